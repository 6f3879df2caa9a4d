"""Incremental parser of ``claude -p --output-format stream-json --verbose`` stdout.

Sans-I/O: :meth:`StreamJsonParser.feed` takes bytes exactly as they came off the pipe (split
anywhere, lines of any length) and returns the normalized events of every line it completed;
:meth:`StreamJsonParser.flush` handles a last line without a newline. Nothing raises on bad
input: an undecodable line becomes an ``invalid_json`` event, a type we do not know an
``unknown`` event, both with the original line in ``raw``.

One stream-json line can give several events (an assistant message with a text block and a
``tool_use`` block); the CLI of 2.1.332 writes one block per line, but older ones did not.

Shapes seen from the CLI (2.1.332), one JSON object per line, see ``docs/claude-cli.md``:
``system/init``, ``system/api_retry``, ``assistant`` (content ``text`` | ``tool_use`` |
``thinking``; API errors come as synthetic assistant text with ``is_api_error_message``),
``user`` (content ``tool_result``), ``rate_limit_event`` (subscription accounts), ``result``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import orjson

__all__ = [
    "TOOL_RESULT_SUMMARY_MAX_CHARS",
    "AgentEvent",
    "EventKind",
    "StreamJsonParser",
]

# The full tool output stays in `raw`; the summary is for progress displays and logs.
TOOL_RESULT_SUMMARY_MAX_CHARS = 2000


class EventKind(StrEnum):
    INIT = "init"
    ASSISTANT_TEXT = "assistant_text"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    RATE_LIMIT = "rate_limit"
    API_RETRY = "api_retry"
    RESULT = "result"
    UNKNOWN = "unknown"
    INVALID_JSON = "invalid_json"


@dataclass(frozen=True)
class AgentEvent:
    """One normalized event. ``data`` holds JSON values only; ``raw`` is the line as text."""

    kind: EventKind
    raw: str
    data: dict[str, object] = field(default_factory=dict)

    def get(self, key: str) -> object:
        return self.data.get(key)

    def to_dict(self) -> dict[str, object]:
        """The wire shape (``agent.event`` params without execution id and seq)."""
        return {"kind": self.kind.value, **self.data, "raw": self.raw}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _summarize(content: object) -> tuple[str, bool]:
    """Text of a ``tool_result`` content (string or blocks), cut to the summary size."""
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts: list[str] = []
        for item in content:
            block = _dict(item)
            if block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif "type" in block:
                parts.append(f"[{block['type']}]")
        text = "\n".join(parts)
    else:
        text = "" if content is None else str(content)
    if len(text) > TOOL_RESULT_SUMMARY_MAX_CHARS:
        return text[:TOOL_RESULT_SUMMARY_MAX_CHARS], True
    return text, False


def _copy(source: dict[str, object], *keys: str) -> dict[str, object]:
    return {key: source.get(key) for key in keys}


class StreamJsonParser:
    """Feed stdout bytes, get events; remembers the latest ``session_id`` it saw."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0  # bytes of _buffer known to hold no newline (big lines stay linear)
        self.session_id: str | None = None

    def feed(self, data: bytes) -> list[AgentEvent]:
        self._buffer += data
        events: list[AgentEvent] = []
        start = 0
        while True:
            newline = self._buffer.find(b"\n", max(start, self._scanned))
            if newline < 0:
                break
            events.extend(self._line(bytes(self._buffer[start:newline])))
            start = newline + 1
        del self._buffer[:start]
        self._scanned = len(self._buffer)
        return events

    def flush(self) -> list[AgentEvent]:
        """Parse what is left after the stream closed (a last line without newline)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        return self._line(rest)

    # --- one line ----------------------------------------------------------------------------
    def _line(self, line: bytes) -> list[AgentEvent]:
        line = line.rstrip(b"\r")
        if not line.strip():
            return []
        raw = line.decode("utf-8", "replace")
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return [AgentEvent(EventKind.INVALID_JSON, raw, {"error": str(exc)})]
        if not isinstance(message, dict):
            return [AgentEvent(EventKind.UNKNOWN, raw, {"type": None})]
        session_id = _str(message.get("session_id"))
        if session_id:
            self.session_id = session_id
        return self._message(message, raw)

    def _message(self, message: dict[str, object], raw: str) -> list[AgentEvent]:
        kind = message.get("type")
        subtype = message.get("subtype")
        if kind == "system" and subtype == "init":
            data = _copy(message, "session_id", "model", "tools", "cwd", "permissionMode")
            data["permission_mode"] = data.pop("permissionMode")
            data["version"] = message.get("claude_code_version")
            return [AgentEvent(EventKind.INIT, raw, data)]
        if kind == "system" and subtype == "api_retry":
            data = _copy(
                message, "attempt", "max_retries", "retry_delay_ms", "error_status", "error"
            )
            return [AgentEvent(EventKind.API_RETRY, raw, data)]
        if kind == "rate_limit_event":
            info = _dict(message.get("rate_limit_info"))
            data = {
                "status": info.get("status"),
                "resets_at": info.get("resetsAt"),
                "rate_limit_type": info.get("rateLimitType"),
                "info": info,
            }
            return [AgentEvent(EventKind.RATE_LIMIT, raw, data)]
        if kind == "assistant":
            events = self._assistant(message, raw)
        elif kind == "user":
            events = self._user(message, raw)
        elif kind == "result":
            events = [AgentEvent(EventKind.RESULT, raw, self._result(message))]
        else:
            events = []
        return events or [AgentEvent(EventKind.UNKNOWN, raw, {"type": kind, "subtype": subtype})]

    def _assistant(self, message: dict[str, object], raw: str) -> list[AgentEvent]:
        body = _dict(message.get("message"))
        content = body.get("content")
        common: dict[str, object] = {
            "message_id": body.get("id"),
            "model": body.get("model"),
            "parent_tool_use_id": message.get("parent_tool_use_id"),
        }
        if message.get("is_api_error_message"):
            common |= {
                "api_error": True,
                "error": message.get("error"),
                "api_error_status": message.get("api_error_status"),
                "api_error_type": message.get("api_error_type"),
            }
        events: list[AgentEvent] = []
        for item in content if isinstance(content, list) else []:
            block = _dict(item)
            if block.get("type") == "text":
                data = {"text": block.get("text"), **common}
                events.append(AgentEvent(EventKind.ASSISTANT_TEXT, raw, data))
            elif block.get("type") == "tool_use":
                data = {**_copy(block, "id", "name", "input"), **common}
                events.append(AgentEvent(EventKind.TOOL_CALL, raw, data))
        return events

    def _user(self, message: dict[str, object], raw: str) -> list[AgentEvent]:
        content = _dict(message.get("message")).get("content")
        events: list[AgentEvent] = []
        for item in content if isinstance(content, list) else []:
            block = _dict(item)
            if block.get("type") != "tool_result":
                continue
            summary, truncated = _summarize(block.get("content"))
            data: dict[str, object] = {
                "tool_use_id": block.get("tool_use_id"),
                "content": summary,
                "truncated": truncated,
                "is_error": bool(block.get("is_error")),
                "parent_tool_use_id": message.get("parent_tool_use_id"),
            }
            events.append(AgentEvent(EventKind.TOOL_RESULT, raw, data))
        return events

    @staticmethod
    def _result(message: dict[str, object]) -> dict[str, object]:
        data = _copy(
            message,
            "subtype",
            "is_error",
            "total_cost_usd",
            "usage",
            "num_turns",
            "duration_ms",
            "duration_api_ms",
            "terminal_reason",
            "api_error_status",
            "stop_reason",
            "errors",
            "session_id",
        )
        data["result"] = message.get("result")
        data["is_error"] = bool(data["is_error"])
        return data
