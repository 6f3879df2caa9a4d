"""``TaskEvent``: one notification of a task's execution, the same shape in-process and remote.

Owns the conversion of what the two runners see into one type: frames of the embedded
supervisor's event log (:func:`event_from_frame`) and typed events of the WebSocket client
(:func:`event_from_params`). A ``TaskEvent`` keeps the wire ``method`` and ``params`` as they
are, so nothing the daemon adds is lost; ``kind`` is the ``agent.event`` kind
(``init``, ``assistant_text``, ``tool_call``, ``tool_result``, ``result``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from cc_executor.protocol.names import Notification

__all__ = ["TaskEvent", "event_from_frame", "event_from_params"]

SUMMARY_MAX_CHARS = 120  # one-line summaries (progress callbacks, logs) stay short


@dataclass(frozen=True)
class TaskEvent:
    """One notification about an execution, in ``seq`` order (``seq`` is ``None`` if unknown)."""

    execution_id: str
    method: str
    seq: int | None = None
    params: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def kind(self) -> str | None:
        """The ``agent.event`` kind, ``None`` for other notifications."""
        if self.method != Notification.AGENT_EVENT:
            return None
        kind = self.params.get("kind")
        return kind if isinstance(kind, str) else None

    def get(self, key: str) -> object:
        return self.params.get(key)

    def text(self, key: str) -> str:
        """``params[key]`` when it is a string, else ``""``."""
        value = self.params.get(key)
        return value if isinstance(value, str) else ""

    def to_dict(self) -> dict[str, object]:
        """The notification as it came: ``{"method": ..., "params": {...}}``."""
        return {"method": self.method, "params": self.params}

    def __str__(self) -> str:
        return f"{self.execution_id[:8]} {self.summary()}"

    def summary(self) -> str:
        """A short human description (``assistant_text: 2 + 2 = 4``, ``tool_call: Bash ...``)."""
        kind = self.kind
        if kind is None:
            detail = self.text("status") or self.text("error") or self.text("type")
            return _cut(f"{self.method} {detail}".strip())
        if kind == "assistant_text":
            detail = self.text("text")
        elif kind == "tool_call":
            detail = f"{self.text('name')} {orjson.dumps(self.get('input')).decode()}"
        elif kind == "tool_result":
            detail = self.text("content")
        elif kind == "result":
            detail = self.text("subtype") or self.text("result")
        else:
            detail = ""
        return _cut(f"{kind}: {detail}".strip().rstrip(":"))


def _cut(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= SUMMARY_MAX_CHARS else line[: SUMMARY_MAX_CHARS - 1] + "…"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def event_from_params(method: str, params: dict[str, object]) -> TaskEvent:
    """A ``TaskEvent`` from a notification's method and params (e.g. a client event's)."""
    return TaskEvent(
        execution_id=str(params.get("execution_id", "")),
        method=method,
        seq=_int(params.get("seq")),
        params=params,
    )


def event_from_frame(frame: str) -> TaskEvent:
    """A ``TaskEvent`` from one encoded notification of the supervisor's event log."""
    message = orjson.loads(frame)
    params = message.get("params") if isinstance(message, dict) else None
    method = message.get("method") if isinstance(message, dict) else None
    return event_from_params(str(method or ""), dict(params) if isinstance(params, dict) else {})
