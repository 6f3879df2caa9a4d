"""The policy of one Claude run: parse its stream, watch its result, decide its retries.

:class:`ClaudeRunPolicy` implements the supervisor's
:class:`~cc_executor.supervisor.attempts.AttemptPolicy`. Per attempt it feeds stdout to a
:class:`~cc_executor.agents.StreamJsonParser` and appends every event as ``agent.event`` to the
execution's log; it remembers the session id and the normalized ``result``; once the result
line arrived it arms the result-grace watchdog (the CLI is known to hang after its answer).
When the attempt is over it asks :func:`~cc_executor.agents.classify_failure` what went wrong
and decides:

============================  ==========================================================
failure                       decision
============================  ==========================================================
rate limit (429), overloaded  retry after a tenacity backoff, ``attempts`` in all;
(529)                         ``error.rate_limit_exceeded`` each time
output token limit            retry at once with the prompt amended to ask for a shorter
                              answer, ``token_limit_retries`` times (only when we own the
                              prompt); ``error.token_limit_exceeded``
context limit                 no retry; ``error.token_limit_exceeded``
usage limit                   wait in ``waiting_for_limit`` until the reset (at most
                              ``usage_limit_max_wait_s``), then run again; not a failure;
                              ``task.waiting_for_limit``
other                         finish as failed
============================  ==========================================================

Does not own waiting or processes (the supervisor does) nor argv/env (``agent_spec``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from loguru import logger

from cc_executor.agents import (
    AgentEvent,
    EventKind,
    Failure,
    FailureKind,
    StreamJsonParser,
    classify_failure,
)
from cc_executor.protocol.names import Notification
from cc_executor.scheduler.retry import (
    BackoffConfig,
    backoff_wait,
    concise_prompt,
    usage_limit_wait,
)
from cc_executor.supervisor import AttemptEnd, AttemptHost, Decision, Finish, Retry

__all__ = [
    "AGENT_EVENT_RAW_MAX_CHARS",
    "MAX_USAGE_LIMIT_WAITS",
    "RESULT_GRACE_REASON",
    "STDERR_TAIL_BYTES",
    "ClaudeRunPolicy",
    "LimitConfig",
    "normalize_result",
]

# agent.event carries the line it was parsed from; a tool result can be megabytes long, and the
# exact bytes already travel in process.output (<= 64 KiB pieces), so `raw` is cut here.
AGENT_EVENT_RAW_MAX_CHARS = 64 * 1024
STDERR_TAIL_BYTES = 8 * 1024  # classify_failure reads the end of stderr for error texts
SIGNAL_EVENTS_KEPT = 64  # result, API errors and rate-limit events of one attempt
MAX_USAGE_LIMIT_WAITS = 4  # a reset that does not reset must not loop for ever
RESULT_GRACE_REASON = "result_grace"  # process.completed reason: ended by us after its result

_SIGNAL_KINDS = frozenset({EventKind.RESULT, EventKind.RATE_LIMIT})
_RATE_KINDS = frozenset({FailureKind.RATE_LIMIT, FailureKind.OVERLOADED})
_TOKEN_KINDS = frozenset({FailureKind.OUTPUT_TOKEN_LIMIT, FailureKind.CONTEXT_LIMIT})
_RESULT_FIELDS = (
    "subtype",
    "is_error",
    "total_cost_usd",
    "usage",
    "num_turns",
    "duration_ms",
    "terminal_reason",
    "api_error_status",
)


@dataclass(frozen=True, slots=True)
class LimitConfig:
    """The knobs of one Claude run's watchdog and recovery (from settings, via agent_spec)."""

    result_grace_s: float = 10.0
    backoff: BackoffConfig = field(default_factory=BackoffConfig)
    token_limit_retries: int = 2
    usage_limit_max_wait_s: float = 6 * 3600.0


def normalize_result(event: AgentEvent) -> dict[str, object]:
    """The ``result`` of ``status``: text, is_error, subtype, cost, usage, turns, ..."""
    result: dict[str, object] = {"text": event.get("result")}
    result.update({name: event.get(name) for name in _RESULT_FIELDS})
    return result


def _now() -> datetime:
    return datetime.now(UTC)


class ClaudeRunPolicy:
    """One per execution. ``argv_for_prompt`` is None when the caller owns the prompt.

    ``may_print_text``: the run may print plain text instead of stream-json (a ``claude``
    command whose output format we did not choose); its non-JSON lines are then not reported
    as ``invalid_json`` events.
    """

    def __init__(
        self,
        limits: LimitConfig,
        *,
        prompt: str | None = None,
        argv_for_prompt: Callable[[str], list[str]] | None = None,
        may_print_text: bool = False,
        clock: Callable[[], datetime] = _now,
        local_tz: tzinfo = UTC,
    ) -> None:
        self.limits = limits
        self._prompt = prompt
        self._argv_for_prompt = argv_for_prompt
        self._may_print_text = may_print_text
        self._clock = clock
        self._local_tz = local_tz
        self._host: AttemptHost | None = None
        self._attempt = 0
        self._parser = StreamJsonParser()
        self._signals: deque[AgentEvent] = deque(maxlen=SIGNAL_EVENTS_KEPT)
        self._stderr_tail = bytearray()
        self._rate_retries = 0
        self._token_retries = 0
        self._usage_waits = 0
        self.session_id: str | None = None
        self.result: dict[str, object] | None = None
        self.failure: Failure | None = None
        self._result_seen = False

    # --- AttemptPolicy -------------------------------------------------------------------------

    def bind(self, host: AttemptHost) -> None:
        self._host = host

    def attempt_started(self, attempt: int) -> None:
        self._attempt = attempt
        self._parser = StreamJsonParser()
        self._signals.clear()
        self._stderr_tail.clear()
        self._result_seen = False

    def on_output(self, stream: str, data: bytes) -> None:
        if stream == "stdout":
            for event in self._parser.feed(data):
                self._event(event)
        else:
            tail = self._stderr_tail
            tail += data
            if len(tail) > STDERR_TAIL_BYTES:
                del tail[: len(tail) - STDERR_TAIL_BYTES]

    def attempt_ended(self, end: AttemptEnd) -> Decision:
        for event in self._parser.flush():
            self._event(event)
        self.failure = failure = self._failure(end)
        if failure is None:
            if self._result_seen:
                reason = RESULT_GRACE_REASON if end.ended_by == RESULT_GRACE_REASON else None
                return Finish(succeeded=True, reason=reason)
            return None  # no stream-json result (a shell `claude --version`): exit code decides
        logger.info(
            "execution {} attempt {}: {} ({})",
            self._host_id(),
            end.attempt,
            failure.kind.value,
            failure.message,
        )
        return self._recover(failure, end) if end.can_retry else None

    def _recover(self, failure: Failure, end: AttemptEnd) -> Decision:
        if failure.kind in _RATE_KINDS:
            return self._rate_limited(failure, end)
        if failure.kind in _TOKEN_KINDS:
            return self._token_limited(failure, end)
        if failure.kind is FailureKind.USAGE_LIMIT:
            return self._usage_limited(failure, end)
        return Finish(succeeded=False)

    def info(self) -> Mapping[str, object]:
        failure = self.failure
        return {
            "session_id": self.session_id,
            "result": self.result,
            "failure": None
            if failure is None
            else {
                "kind": failure.kind.value,
                "message": failure.message,
                "api_error_status": failure.api_error_status,
            },
        }

    # --- events --------------------------------------------------------------------------------

    def _event(self, event: AgentEvent) -> None:
        if (
            self._may_print_text
            and event.kind is EventKind.INVALID_JSON
            and not event.raw.lstrip().startswith("{")
        ):
            return  # plain text from a `claude` command without stream-json: in process.output
        if self._parser.session_id:
            self.session_id = self._parser.session_id
        if event.kind in _SIGNAL_KINDS or (
            event.kind is EventKind.ASSISTANT_TEXT and event.get("api_error")
        ):
            self._signals.append(event)
        self._emit(Notification.AGENT_EVENT, _wire(event))
        if event.kind is EventKind.RESULT:
            self.result = normalize_result(event)
            self._result_seen = True
            if self._host is not None:
                self._host.end_attempt_after(self.limits.result_grace_s, RESULT_GRACE_REASON)

    def _emit(self, method: str, params: Mapping[str, object]) -> None:
        if self._host is not None:
            self._host.emit(method, params)

    def _host_id(self) -> str:
        return self._host.id if self._host is not None else "?"

    # --- decisions -----------------------------------------------------------------------------

    def _failure(self, end: AttemptEnd) -> Failure | None:
        if not self._result_seen and end.exit_code == 0:
            return None
        stderr = self._stderr_tail.decode("utf-8", "replace")
        return classify_failure(
            list(self._signals), stderr, now=self._clock(), local_tz=self._local_tz
        )

    def _rate_limited(self, failure: Failure, end: AttemptEnd) -> Decision:
        backoff = self.limits.backoff
        retry = self._rate_retries + 1 < backoff.attempts  # tries so far: retries + 1
        wait = backoff_wait(self._rate_retries + 1, backoff) if retry else None
        self._emit(
            Notification.ERROR_RATE_LIMIT_EXCEEDED,
            {
                **_failure_fields(failure, end),
                "retry": retry,
                "wait_s": wait,
                "retries_done": self._rate_retries,
                "max_attempts": backoff.attempts,
            },
        )
        if wait is None:
            return Finish(succeeded=False, reason=failure.kind.value)
        self._rate_retries += 1
        return Retry(reason=failure.kind.value, delay_s=wait)

    def _token_limited(self, failure: Failure, end: AttemptEnd) -> Decision:
        total = self.limits.token_limit_retries
        retry = (
            failure.kind is FailureKind.OUTPUT_TOKEN_LIMIT
            and self._argv_for_prompt is not None
            and self._prompt is not None
            and self._token_retries < total
        )
        amended = concise_prompt(self._prompt or "", self._token_retries + 1, total)
        self._emit(
            Notification.ERROR_TOKEN_LIMIT_EXCEEDED,
            {
                **_failure_fields(failure, end),
                "retry": retry,
                "strategy": "concise_prompt" if retry else None,
                "retries_done": self._token_retries,
                "max_retries": total,
                "prompt": amended if retry else None,
            },
        )
        if not retry or self._argv_for_prompt is None:
            return Finish(succeeded=False, reason=failure.kind.value)
        self._token_retries += 1
        return Retry(reason=failure.kind.value, argv=self._argv_for_prompt(amended))

    def _usage_limited(self, failure: Failure, end: AttemptEnd) -> Decision:
        now = self._clock()
        wait = usage_limit_wait(
            failure.resets_at, now=now, max_wait_s=self.limits.usage_limit_max_wait_s
        )
        if wait is not None and self._usage_waits >= MAX_USAGE_LIMIT_WAITS:
            wait = None
        resets_at = failure.resets_at
        self._emit(
            Notification.TASK_WAITING_FOR_LIMIT,
            {
                **_failure_fields(failure, end),
                "waiting": wait is not None,
                "wait_s": wait,
                "resets_at": resets_at.isoformat() if resets_at else None,
                "resets_at_epoch": resets_at.timestamp() if resets_at else None,
                "max_wait_s": self.limits.usage_limit_max_wait_s,
            },
        )
        if wait is None:
            return Finish(succeeded=False, reason=failure.kind.value)
        self._usage_waits += 1
        return Retry(reason=failure.kind.value, delay_s=wait)


def _failure_fields(failure: Failure, end: AttemptEnd) -> dict[str, object]:
    return {
        "attempt": end.attempt,
        "kind": failure.kind.value,
        "message": failure.message,
        "api_error_status": failure.api_error_status,
        "exit_code": end.exit_code,
    }


def _wire(event: AgentEvent) -> dict[str, object]:
    params = event.to_dict()
    if len(event.raw) > AGENT_EVENT_RAW_MAX_CHARS:
        params["raw"] = event.raw[:AGENT_EVENT_RAW_MAX_CHARS]
        params["raw_truncated"] = True
        params["raw_chars"] = len(event.raw)
    return params
