"""Typed events of one execution, built from the notifications the daemon sends.

Owns the mapping *wire notification -> event object* and nothing else: no I/O, no state. Every
event keeps the notification's ``method`` and raw ``params`` (``to_wire()``), so a consumer that
needs a field this module does not type yet still has it.

Output data is kept as it arrived: ``str`` for text pieces, ``bytes`` for pieces the daemon sent
base64-encoded (not valid UTF-8 on their own). ``Output.data_bytes`` gives the exact bytes either
way; concatenating them in order reproduces the child's stream byte for byte.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cc_executor.protocol.names import Notification

__all__ = [
    "AgentEvent",
    "Canceled",
    "Completed",
    "Event",
    "Gap",
    "Output",
    "Paused",
    "ProcessError",
    "Resumed",
    "Started",
    "event_from_notification",
]


@dataclass(frozen=True, kw_only=True)
class Event:
    """Any notification about one execution; the base of every typed event.

    ``seq`` is the per-execution sequence number (``None`` for notifications that carry none,
    such as ``stream.gap``).
    """

    method: str
    execution_id: str
    seq: int | None = None
    params: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_wire(self) -> dict[str, Any]:
        """The notification as it came: ``{"method": ..., "params": {...}}``."""
        return {"method": self.method, "params": self.params}


@dataclass(frozen=True, kw_only=True)
class Started(Event):
    """``process.started``: the group exists."""

    method: str = Notification.PROCESS_STARTED.value
    pid: int | None = None
    pgid: int | None = None
    command: str | None = None


@dataclass(frozen=True, kw_only=True)
class Output(Event):
    """``process.output``: one piece of stdout or stderr (at most 64 KB encoded)."""

    method: str = Notification.PROCESS_OUTPUT.value
    stream: str
    data: str | bytes
    truncated: bool = False
    chunk_index: int | None = None
    total_chunks: int | None = None

    @property
    def data_bytes(self) -> bytes:
        """The exact bytes of this piece."""
        return self.data.encode() if isinstance(self.data, str) else self.data

    @property
    def text(self) -> str:
        """The piece as text (undecodable bytes of a split character become U+FFFD)."""
        return self.data if isinstance(self.data, str) else self.data.decode(errors="replace")


@dataclass(frozen=True, kw_only=True)
class Paused(Event):
    method: str = Notification.PROCESS_PAUSED.value


@dataclass(frozen=True, kw_only=True)
class Resumed(Event):
    method: str = Notification.PROCESS_RESUMED.value


@dataclass(frozen=True, kw_only=True)
class Canceled(Event):
    method: str = Notification.PROCESS_CANCELED.value


@dataclass(frozen=True, kw_only=True)
class ProcessError(Event):
    """``process.error``: the daemon could not do something for this execution."""

    method: str = Notification.PROCESS_ERROR.value
    error: str = ""
    code: int | str | None = None


@dataclass(frozen=True, kw_only=True)
class Completed(Event):
    """``process.completed``: the last event of every execution.

    ``status`` is ``completed``, ``failed``, ``timeout`` or ``canceled`` (or a state a newer
    daemon adds, such as ``lost``).
    """

    method: str = Notification.PROCESS_COMPLETED.value
    status: str
    exit_code: int | None = None
    signal: int | None = None
    execution_time: float | None = None

    @property
    def success(self) -> bool:
        return self.status == "completed" and self.exit_code == 0


@dataclass(frozen=True, kw_only=True)
class AgentEvent(Event):
    """``agent.event``: a normalized agent event; its other fields stay in ``params``."""

    method: str = Notification.AGENT_EVENT.value
    kind: str = ""
    raw: str | None = None


@dataclass(frozen=True, kw_only=True)
class Gap(Event):
    """``stream.gap``: events ``from_seq..to_seq`` are no longer retained by the daemon."""

    method: str = Notification.STREAM_GAP.value
    from_seq: int = 0
    to_seq: int = 0


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _output_data(params: dict[str, Any]) -> str | bytes:
    data = params.get("data", "")
    if not isinstance(data, str):
        return ""
    if params.get("encoding") == "base64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error:
            return data.encode()  # a malformed piece is still shown rather than dropped
    return data


def _output(params: dict[str, Any], common: dict[str, Any]) -> Event:
    return Output(
        stream=str(params.get("type", "stdout")),
        data=_output_data(params),
        truncated=bool(params.get("truncated", False)),
        chunk_index=_int(params.get("chunk_index")),
        total_chunks=_int(params.get("total_chunks")),
        **common,
    )


def _completed(params: dict[str, Any], common: dict[str, Any]) -> Event:
    return Completed(
        status=str(params.get("status", "failed")),
        exit_code=_int(params.get("exit_code")),
        signal=_int(params.get("signal")),
        execution_time=_float(params.get("execution_time")),
        **common,
    )


def _started(params: dict[str, Any], common: dict[str, Any]) -> Event:
    return Started(
        pid=_int(params.get("pid")),
        pgid=_int(params.get("pgid")),
        command=_str(params.get("command")),
        **common,
    )


def _process_error(params: dict[str, Any], common: dict[str, Any]) -> Event:
    code = params.get("code")
    return ProcessError(
        error=str(params.get("error", "")),
        code=code if isinstance(code, int | str) and not isinstance(code, bool) else None,
        **common,
    )


def _agent_event(params: dict[str, Any], common: dict[str, Any]) -> Event:
    return AgentEvent(kind=str(params.get("kind", "")), raw=_str(params.get("raw")), **common)


def _gap(params: dict[str, Any], common: dict[str, Any]) -> Event:
    return Gap(
        from_seq=_int(params.get("from_seq")) or 0,
        to_seq=_int(params.get("to_seq")) or 0,
        **common,
    )


_BUILDERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], Event]] = {
    Notification.PROCESS_OUTPUT: _output,
    Notification.PROCESS_COMPLETED: _completed,
    Notification.PROCESS_STARTED: _started,
    Notification.PROCESS_PAUSED: lambda _, common: Paused(**common),
    Notification.PROCESS_RESUMED: lambda _, common: Resumed(**common),
    Notification.PROCESS_CANCELED: lambda _, common: Canceled(**common),
    Notification.PROCESS_ERROR: _process_error,
    Notification.AGENT_EVENT: _agent_event,
    Notification.STREAM_GAP: _gap,
}


def event_from_notification(method: str, params: dict[str, Any]) -> Event:
    """Build the typed event for one notification about an execution.

    Fields are read leniently (a wrong type becomes ``None``): the daemon is trusted, and an
    unexpected field must not make the client lose the event. Unknown methods become ``Event``.
    """
    common: dict[str, Any] = {
        "execution_id": str(params.get("execution_id", "")),
        "seq": _int(params.get("seq")),
        "params": params,
    }
    builder = _BUILDERS.get(method)
    if builder is None:
        return Event(method=method, **common)
    return builder(params, common)
