"""Why a Claude run failed, from its parsed events and the tail of its stderr.

:func:`classify_failure` looks at what the CLI reported (the ``result`` message, synthetic
assistant error messages, ``rate_limit_event`` and ``api_retry`` events) and at stderr, and
returns a :class:`Failure` the scheduler can act on: wait until ``resets_at`` (usage limit),
back off and retry (rate limit, overloaded), split the work (output or context limit), or give
up (other). ``None`` means the run succeeded.

Usage-limit texts differ across CLI versions and account kinds (collected from public issue
reports, see ``docs/claude-cli.md``):

- ``Claude AI usage limit reached|1762952400`` (epoch seconds after the bar)
- ``Claude usage limit reached. Your limit will reset at 5pm (Europe/Warsaw).``
- ``Claude usage limit reached. Your limit will reset at Oct 6, 6pm.``
- ``You've hit your limit · resets 2pm (Asia/Shanghai)``
- a ``rate_limit_event`` with ``status: "rejected"`` and ``resetsAt`` (epoch seconds)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cc_executor.agents.claude_stream import AgentEvent, EventKind

__all__ = ["Failure", "FailureKind", "classify_failure", "parse_reset_time"]

# A reset lies ahead (within a week or so); a date without a year that lies further back than
# this (clock skew, a message read late) is meant for next year.
PAST_DATE_SLACK = timedelta(days=1)
EPOCH_MS_THRESHOLD = 10**11  # epoch values above this are milliseconds, not seconds


class FailureKind(StrEnum):
    USAGE_LIMIT = "usage_limit"  # subscription quota; wait until resets_at
    RATE_LIMIT = "rate_limit"  # HTTP 429 after the CLI's own retries
    OVERLOADED = "overloaded"  # HTTP 529 / overloaded_error
    OUTPUT_TOKEN_LIMIT = "output_token_limit"  # noqa: S105 (not a password) answer cut short
    CONTEXT_LIMIT = "context_limit"  # the prompt is too long for the model
    OTHER = "other"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    message: str
    api_error_status: int | None = None
    resets_at: datetime | None = None


_USAGE_BAR = re.compile(r"usage limit reached\|(\d{9,13})", re.IGNORECASE)
_USAGE_TEXT = re.compile(
    r"usage limit reached|hit your limit|out of (?:extra )?usage|limit will reset",
    re.IGNORECASE,
)
_RESET = re.compile(
    r"resets?\s+(?:at\s+)?(?P<when>[^()\n·|]*?\d{1,2}(?::\d{2})?\s*[ap]\.?\s?m\.?)"
    r"\s*(?:\((?P<tz>[A-Za-z][\w+\-/]*)\))?",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>[ap])\.?\s?m", re.IGNORECASE)
_DATE = re.compile(r"(?P<mon>[A-Za-z]{3})[a-z]*\.?\s+(?P<day>\d{1,2})\b")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_OUTPUT_LIMIT = re.compile(r"exceeded the \d+ output token maximum", re.IGNORECASE)
_CONTEXT_LIMIT = re.compile(r"prompt is too long|context length|context window", re.IGNORECASE)
_OVERLOADED = re.compile(r"\boverloaded\b|\b529\b", re.IGNORECASE)
_RATE_LIMITED = re.compile(r"rate.?limit|\b429\b", re.IGNORECASE)


def _from_epoch(value: int) -> datetime:
    if value > EPOCH_MS_THRESHOLD:
        value //= 1000
    return datetime.fromtimestamp(value, UTC)


def parse_reset_time(text: str, *, now: datetime, local_tz: tzinfo = UTC) -> datetime | None:
    """The aware datetime a usage-limit message says the limit resets at, if it says.

    Clock times without a date are the next such time after ``now``; a zone in parentheses
    wins over ``local_tz`` (what the CLI's machine uses when it names none).
    """
    if match := _USAGE_BAR.search(text):
        return _from_epoch(int(match.group(1)))
    match = _RESET.search(text)
    clock = _CLOCK.search(match.group("when")) if match else None
    if match is None or clock is None:
        return None
    hour12, minute = int(clock.group("h")), int(clock.group("m") or 0)
    if not 1 <= hour12 <= 12 or minute > 59:
        return None
    hour = hour12 % 12 + (12 if clock.group("ampm").lower() == "p" else 0)
    local_now = now.astimezone(_zone(match.group("tz"), local_tz))
    date = _DATE.search(match.group("when"))
    month = _MONTHS.get(date.group("mon").lower()) if date else None
    if date is None or month is None:
        candidate = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return candidate if candidate > local_now else candidate + timedelta(days=1)
    return _on_date(local_now, month, int(date.group("day")), hour, minute)


def _zone(name: str | None, default: tzinfo) -> tzinfo:
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return default


def _on_date(local_now: datetime, month: int, day: int, hour: int, minute: int) -> datetime | None:
    try:
        candidate = local_now.replace(
            month=month, day=day, hour=hour, minute=minute, second=0, microsecond=0
        )
    except ValueError:  # Feb 30 and the like
        return None
    if candidate < local_now - PAST_DATE_SLACK:
        candidate = candidate.replace(year=candidate.year + 1)
    return candidate


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def classify_failure(
    events: Iterable[AgentEvent],
    stderr_tail: str = "",
    *,
    now: datetime | None = None,
    local_tz: tzinfo = UTC,
) -> Failure | None:
    """``None`` when the run's ``result`` says success; else what went wrong."""
    now = now or datetime.now(UTC)
    result: AgentEvent | None = None
    texts: list[str] = []
    status: int | None = None
    error_codes: set[str] = set()
    rejected_reset: int | None = None
    for event in events:
        if event.kind is EventKind.RESULT:
            result = event
        elif event.kind is EventKind.ASSISTANT_TEXT and event.get("api_error"):
            texts.append(str(event.get("text") or ""))
            status = _int(event.get("api_error_status")) or status
            error_codes.add(str(event.get("error")))
        elif event.kind is EventKind.RATE_LIMIT and event.get("status") == "rejected":
            rejected_reset = _int(event.get("resets_at"))

    if result is not None and not result.get("is_error") and rejected_reset is None:
        return None
    if result is not None:
        status = _int(result.get("api_error_status")) or status
        texts.append(str(result.get("result") or ""))
        errors = result.get("errors")
        if isinstance(errors, list):
            texts.extend(str(e) for e in errors)
    if stderr_tail.strip():
        texts.append(stderr_tail.strip())
    text = "\n".join(t for t in texts if t)
    message = text.splitlines()[0] if text else "claude exited without a result"
    return _classify(
        text,
        message,
        status=status,
        error_codes=error_codes,
        rejected_reset=rejected_reset,
        now=now,
        local_tz=local_tz,
    )


def _classify(
    text: str,
    message: str,
    *,
    status: int | None,
    error_codes: set[str],
    rejected_reset: int | None,
    now: datetime,
    local_tz: tzinfo,
) -> Failure:
    if rejected_reset is not None or _USAGE_TEXT.search(text):
        resets_at = (
            _from_epoch(rejected_reset)
            if rejected_reset is not None
            else parse_reset_time(text, now=now, local_tz=local_tz)
        )
        return Failure(FailureKind.USAGE_LIMIT, message, status, resets_at)
    if "max_output_tokens" in error_codes or _OUTPUT_LIMIT.search(text):
        return Failure(FailureKind.OUTPUT_TOKEN_LIMIT, message, status)
    if _CONTEXT_LIMIT.search(text):
        return Failure(FailureKind.CONTEXT_LIMIT, message, status)
    if (
        status == 429
        or "rate_limit" in error_codes
        or (status is None and _RATE_LIMITED.search(text))
    ):
        return Failure(FailureKind.RATE_LIMIT, message, status)
    if status == 529 or (status is None and _OVERLOADED.search(text)):
        return Failure(FailureKind.OVERLOADED, message, status)
    return Failure(FailureKind.OTHER, message, status)
