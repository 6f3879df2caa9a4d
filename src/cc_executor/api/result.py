"""What a task produced: :class:`RunOutcome` (one Claude execution, read from its events) and
:class:`TaskResult` (one task of the Python API, with receipt, validation and report).

Everything here is derived from the execution's events (``agent.event`` ``init`` and
``result``, ``process.completed``), never from files the model could have written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from cc_executor.api.events import TaskEvent
from cc_executor.protocol.names import Notification

__all__ = ["RunOutcome", "TaskResult", "TaskState", "Validation", "outcome_from_events"]

TaskState = Literal["completed", "failed", "timeout", "canceled", "lost", "skipped"]


@dataclass(frozen=True)
class RunOutcome:
    """One finished Claude execution as its events describe it."""

    execution_id: str
    state: str
    exit_code: int | None
    text: str
    is_error: bool
    session_id: str | None = None
    subtype: str | None = None
    total_cost_usd: float | None = None
    usage: dict[str, object] = field(default_factory=dict)
    num_turns: int | None = None
    duration_ms: int | None = None
    terminal_reason: str | None = None
    api_error_status: int | None = None
    execution_time: float | None = None
    error: str | None = None
    events: tuple[TaskEvent, ...] = ()

    @property
    def success(self) -> bool:
        return self.state == "completed" and self.exit_code == 0 and not self.is_error

    def result_fields(self) -> dict[str, Any]:
        """The :class:`TaskResult` fields that come straight from this outcome."""
        return {
            "execution_id": self.execution_id,
            "state": self.state,
            "exit_code": self.exit_code,
            "is_error": self.is_error,
            "session_id": self.session_id,
            "subtype": self.subtype,
            "terminal_reason": self.terminal_reason,
            "cost_usd": self.total_cost_usd,
            "usage": self.usage,
            "num_turns": self.num_turns,
            "duration_ms": self.duration_ms,
            "execution_time": self.execution_time,
            "events": self.events,
        }

    def assistant_texts(self) -> Iterator[str]:
        """Every assistant text block and the final result text, in order."""
        for event in self.events:
            if event.kind == "assistant_text":
                yield event.text("text")
        yield self.text


def _float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def outcome_from_events(execution_id: str, events: Iterable[TaskEvent]) -> RunOutcome:
    """Fold an execution's events into its outcome (the last ``result`` and ``init`` win:
    a run retried within one execution reports its final attempt)."""
    kept = tuple(events)
    result: TaskEvent | None = None
    session_id: str | None = None
    completed: TaskEvent | None = None
    errors: list[str] = []
    texts: list[str] = []
    for event in kept:
        kind = event.kind
        if kind == "result":
            result = event
        elif kind == "init":
            session_id = _str(event.get("session_id")) or session_id
        elif kind == "assistant_text":
            texts.append(event.text("text"))
        elif event.method == Notification.PROCESS_COMPLETED:
            completed = event
        elif event.method == Notification.PROCESS_ERROR:
            errors.append(event.text("error"))
    state = completed.text("status") if completed is not None else "lost"
    exit_code = _int(completed.get("exit_code")) if completed is not None else None
    if result is None:
        text = texts[-1] if texts else ""
        is_error = True
        if not errors:
            errors.append(f"Claude ended without a result ({state}, exit code {exit_code})")
        return RunOutcome(
            execution_id,
            state,
            exit_code,
            text,
            is_error,
            session_id=session_id,
            execution_time=_float(completed.get("execution_time")) if completed else None,
            error="; ".join(errors),
            events=kept,
        )
    usage = result.get("usage")
    is_error = bool(result.get("is_error"))
    if is_error and not errors:
        errors.append(result.text("result") or result.text("subtype") or "Claude reported an error")
    return RunOutcome(
        execution_id,
        state,
        exit_code,
        result.text("result"),
        is_error,
        session_id=_str(result.get("session_id")) or session_id,
        subtype=_str(result.get("subtype")),
        total_cost_usd=_float(result.get("total_cost_usd")),
        usage=dict(usage) if isinstance(usage, dict) else {},
        num_turns=_int(result.get("num_turns")),
        duration_ms=_int(result.get("duration_ms")),
        terminal_reason=_str(result.get("terminal_reason")),
        api_error_status=_int(result.get("api_error_status")),
        execution_time=_float(completed.get("execution_time")) if completed else None,
        error="; ".join(errors) or None,
        events=kept,
    )


@dataclass(frozen=True)
class Validation:
    """The verdict of a second, fresh Claude run on the first one's result."""

    is_valid: bool
    reason: str
    execution_id: str | None = None
    error: str | None = None  # validation itself failed; is_valid then defaults to True


@dataclass(frozen=True)
class TaskResult:
    """The result of one task. ``str(result)`` is the answer text; with ``json_mode``,
    ``result["key"]`` reads the parsed JSON (``result.data``), as the earlier API's dict did."""

    task: str
    prompt: str
    execution_id: str
    state: TaskState | str
    success: bool
    text: str
    exit_code: int | None = None
    data: object = None
    is_error: bool = False
    error: str | None = None
    session_id: str | None = None
    subtype: str | None = None
    terminal_reason: str | None = None
    cost_usd: float | None = None
    usage: dict[str, object] = field(default_factory=dict)
    num_turns: int | None = None
    duration_ms: int | None = None
    execution_time: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    uuid: str | None = None
    uuid_found: bool = False
    receipt_path: str | None = None
    amendments: tuple[str, ...] = ()
    validation: Validation | None = None
    report_path: str | None = None
    extra_execution_ids: tuple[str, ...] = ()  # JSON repair, amend and validation runs
    events: tuple[TaskEvent, ...] = field(default=(), repr=False)

    @property
    def skipped(self) -> bool:
        return self.state == "skipped"

    def __str__(self) -> str:
        return self.text

    def __getitem__(self, key: str | int) -> object:
        if isinstance(self.data, dict) and isinstance(key, str):
            return self.data[key]
        if isinstance(self.data, list) and isinstance(key, int):
            return self.data[key]
        raise KeyError(key)

    def to_dict(self, *, events: bool = False) -> dict[str, object]:
        """A JSON-ready dict (``events=True`` includes every event)."""
        # Not asdict(self): it would deep-copy every event only to replace them here.
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["validation"] = asdict(self.validation) if self.validation is not None else None
        out["amendments"] = list(self.amendments)
        out["extra_execution_ids"] = list(self.extra_execution_ids)
        out["events"] = [e.to_dict() for e in self.events] if events else len(self.events)
        out["skipped"] = self.skipped
        return out
