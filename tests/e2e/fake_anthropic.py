"""A scripted fake of the Anthropic Messages API on 127.0.0.1, for running the real Claude CLI.

``FakeAnthropic`` serves ``POST /v1/messages`` with server-sent events shaped like the real API
(``message_start``, ``content_block_start``/``_delta``/``_stop`` for text and ``tool_use``
blocks, ``message_delta`` with ``stop_reason`` and ``usage``, ``message_stop``), from a queue of
replies the test scripts up front. Every request is recorded, so a test can assert what the CLI
sent (for instance the ``tool_result`` of a Bash call).

Determinism: the CLI makes *side* requests besides the conversation (a one-token quota probe,
title or topic generation with a small model). Those never consume the script: a request is a
side request when its body has no ``tools`` (the conversation always sends the tool list) or
asks for ``max_tokens == 1``; side requests get a short canned text answer. Tests that want to
see them read :attr:`FakeAnthropic.requests` (``RecordedRequest.side``).

Everything else the CLI asks for at start-up (``/v1/messages/count_tokens``, ``HEAD /``,
``GET`` probes) gets a harmless answer and is logged; paths we do not know are kept in
:attr:`FakeAnthropic.unknown_paths`. When the script runs out, the conversation gets a text
reply saying so (and :attr:`FakeAnthropic.exhausted` counts it) instead of hanging the CLI.

Serves from a daemon thread (stdlib ``ThreadingHTTPServer``): usable from sync and async tests.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from loguru import logger

__all__ = [
    "DEFAULT_MODEL",
    "ApiError",
    "EchoReply",
    "FakeAnthropic",
    "RecordedRequest",
    "Reply",
    "Scripted",
    "StreamError",
    "TextReply",
    "ToolUseReply",
    "prompt_text",
]

DEFAULT_MODEL = "claude-sonnet-4-5-20250929"
SIDE_REPLY_TEXT = "Side answer"
EXHAUSTED_TEXT = "fake-anthropic: script exhausted"
SERVER_STOP_TIMEOUT_S = 5.0  # joining the serve thread after shutdown()

_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    return f"{prefix}_fake{next(_ids):06d}"


@dataclass(frozen=True)
class TextReply:
    """An assistant turn with one text block. ``stop_reason="max_tokens"`` models a cut answer."""

    text: str
    stop_reason: str = "end_turn"
    input_tokens: int = 20
    output_tokens: int = 10


@dataclass(frozen=True)
class ToolUseReply:
    """An assistant turn that calls one tool (by default ``Bash`` with ``command``)."""

    input: dict[str, Any]
    name: str = "Bash"
    text: str | None = "Running it."
    tool_use_id: str = field(default_factory=lambda: _next_id("toolu"))
    input_tokens: int = 30
    output_tokens: int = 15

    @classmethod
    def bash(cls, command: str, description: str = "Run a command") -> ToolUseReply:
        return cls(input={"command": command, "description": description})


@dataclass(frozen=True)
class ApiError:
    """An HTTP error answer: 429 ``rate_limit_error``, 529 ``overloaded_error``, 400, 500 ..."""

    status: int
    error_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def rate_limited(cls, retry_after_s: int = 1) -> ApiError:
        return cls(
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization.",
            {
                "retry-after": str(retry_after_s),
                "anthropic-ratelimit-requests-remaining": "0",
            },
        )

    @classmethod
    def overloaded(cls) -> ApiError:
        return cls(529, "overloaded_error", "Overloaded")

    @classmethod
    def invalid_request(cls, message: str = "prompt is too long") -> ApiError:
        return cls(400, "invalid_request_error", message)


@dataclass(frozen=True)
class StreamError:
    """A 200 stream that starts a message and then sends an ``event: error`` (mid-stream).

    The CLI retries a broken stream once without streaming; that request gets the same error
    as a plain HTTP answer with ``status``.
    """

    error_type: str = "overloaded_error"
    message: str = "Overloaded"
    status: int = 529


Reply = TextReply | ToolUseReply | ApiError | StreamError

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def prompt_text(body: Any) -> str:
    """The prompt of a conversation request: the last text block of its first user message
    (a ``<system-reminder>`` block comes before it), or the message's text content."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return ""
    for message in body["messages"]:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = (
            [
                str(b.get("text", ""))
                for b in content
                if isinstance(b, dict) and b.get("type") == "text"
            ]
            if isinstance(content, list)
            else []
        )
        return texts[-1] if texts else ""
    return ""


@dataclass(frozen=True)
class EchoReply:
    """A text reply computed from the request's prompt when it is served: ``make(prompt)``."""

    make: Callable[[str], str]
    input_tokens: int = 20
    output_tokens: int = 10

    @classmethod
    def uuid(cls, answer: str, line: str = "{uuid}") -> EchoReply:
        """``answer``, then ``line`` with the last UUID4 of the prompt (nothing if none)."""

        def make(prompt: str) -> str:
            found = _UUID.findall(prompt)
            return f"{answer}\n{line.format(uuid=found[-1])}" if found else answer

        return cls(make)

    def resolve(self, body: Any) -> TextReply:
        return TextReply(
            self.make(prompt_text(body)), "end_turn", self.input_tokens, self.output_tokens
        )


Scripted = Reply | EchoReply  # what a test may enqueue; EchoReply is resolved per request


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    side: bool = False
    reply: Reply | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return list(self.body["messages"])
        return []

    def tool_results(self) -> list[dict[str, Any]]:
        """Every ``tool_result`` block in the request's messages, oldest first."""
        found: list[dict[str, Any]] = []
        for message in self.messages:
            content = message.get("content")
            if isinstance(content, list):
                found.extend(
                    b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"
                )
        return found


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _content_blocks(reply: TextReply | ToolUseReply) -> list[dict[str, Any]]:
    if isinstance(reply, TextReply):
        return [{"type": "text", "text": reply.text}]
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    blocks.append(
        {"type": "tool_use", "id": reply.tool_use_id, "name": reply.name, "input": reply.input}
    )
    return blocks


def _stop_reason(reply: TextReply | ToolUseReply) -> str:
    return reply.stop_reason if isinstance(reply, TextReply) else "tool_use"


def message_events(reply: TextReply | ToolUseReply, model: str) -> list[bytes]:
    """The SSE frames of one streamed message, block by block, as the real API sends them."""
    message_id = _next_id("msg")
    frames = [
        _sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": _usage(reply.input_tokens, 1),
                },
            },
        ),
        _sse("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(_content_blocks(reply)):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            text = block["text"]
            # Two deltas so the CLI's accumulation is exercised.
            half = len(text) // 2
            deltas = [{"type": "text_delta", "text": part} for part in (text[:half], text[half:])]
        else:
            start = {**block, "input": {}}
            raw = json.dumps(block["input"])
            half = len(raw) // 2
            deltas = [
                {"type": "input_json_delta", "partial_json": part}
                for part in (raw[:half], raw[half:])
            ]
        frames.append(
            _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        frames.extend(
            _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        )
        frames.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    frames.append(
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
                "usage": {"output_tokens": reply.output_tokens},
            },
        )
    )
    frames.append(_sse("message_stop", {"type": "message_stop"}))
    return frames


def message_json(reply: TextReply | ToolUseReply, model: str) -> dict[str, Any]:
    """The non-streamed form of the same message."""
    return {
        "id": _next_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _content_blocks(reply),
        "stop_reason": _stop_reason(reply),
        "stop_sequence": None,
        "usage": _usage(reply.input_tokens, reply.output_tokens),
    }


def is_side_request(body: Any) -> bool:
    """Quota probes and title/topic requests: no tool list, or a one-token budget."""
    if not isinstance(body, dict):
        return True
    return not body.get("tools") or body.get("max_tokens") == 1


class FakeAnthropic:
    """Start with ``with FakeAnthropic() as api:``; script with :meth:`enqueue`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[Scripted] = deque()
        self.requests: list[RecordedRequest] = []
        self.unknown_paths: list[str] = []
        self.exhausted = 0
        #: Added to every ``/v1/messages`` answer (e.g. ``anthropic-ratelimit-unified-*``).
        self.response_headers: dict[str, str] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting ---------------------------------------------------------------------------
    def enqueue(self, *replies: Scripted) -> None:
        with self._lock:
            self._script.extend(replies)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._script)

    def conversation_requests(self) -> list[RecordedRequest]:
        """``POST /v1/messages`` requests that consumed the script, in order."""
        with self._lock:
            return [r for r in self.requests if r.path == "/v1/messages" and not r.side]

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeAnthropic is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-anthropic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(SERVER_STOP_TIMEOUT_S)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- called from handler threads ---------------------------------------------------------
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if request.side:
                reply: Reply = TextReply(SIDE_REPLY_TEXT, input_tokens=5, output_tokens=2)
            elif self._script:
                scripted = self._script.popleft()
                reply = (
                    scripted.resolve(request.body) if isinstance(scripted, EchoReply) else scripted
                )
            else:
                self.exhausted += 1
                reply = TextReply(EXHAUSTED_TEXT)
            request.reply = reply
            return reply

    def _unknown(self, method: str, path: str) -> None:
        with self._lock:
            self.unknown_paths.append(f"{method} {path}")
        logger.info("fake-anthropic: unknown {} {}", method, path)


def _make_handler(api: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("fake-anthropic: {}", format % args)

        # --- plumbing ----------------------------------------------------------------------
        def _read_body(self) -> Any:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return None
            try:
                return json.loads(raw)
            except ValueError:
                return raw.decode("utf-8", "replace")

        def _send_json(
            self, status: int, payload: Any, headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", _next_id("req"))
            for name, value in {**api.response_headers, **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _path(self) -> str:
            return self.path.split("?", 1)[0]

        def _record(self, body: Any, *, side: bool = False) -> RecordedRequest:
            request = RecordedRequest(
                method=self.command,
                path=self._path(),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                side=side,
            )
            api._record(request)
            return request

        # --- verbs -------------------------------------------------------------------------
        def do_HEAD(self) -> None:
            self._record(None)
            self._send_json(HTTPStatus.OK, {})

        def do_GET(self) -> None:
            self._record(None)
            api._unknown("GET", self._path())
            self._send_json(HTTPStatus.OK, {})

        def do_POST(self) -> None:
            body = self._read_body()
            path = self._path()
            if path == "/v1/messages/count_tokens":
                self._record(body)
                self._send_json(HTTPStatus.OK, {"input_tokens": 100})
                return
            if path != "/v1/messages":
                self._record(body)
                api._unknown("POST", path)
                self._send_json(HTTPStatus.OK, {})
                return
            request = self._record(body, side=is_side_request(body))
            reply = api._next_reply(request)
            model = body.get("model", DEFAULT_MODEL) if isinstance(body, dict) else DEFAULT_MODEL
            stream = isinstance(body, dict) and bool(body.get("stream"))
            self._answer(reply, str(model), stream=stream)

        def _answer(self, reply: Reply, model: str, *, stream: bool) -> None:
            if isinstance(reply, StreamError) and not stream:
                reply = ApiError(reply.status, reply.error_type, reply.message)
            if isinstance(reply, ApiError):
                error = {"type": reply.error_type, "message": reply.message}
                payload = {"type": "error", "error": error, "request_id": _next_id("req")}
                self._send_json(reply.status, payload, reply.headers)
                return
            if isinstance(reply, StreamError):
                frames = [
                    *message_events(TextReply(""), model)[:2],
                    _sse(
                        "error",
                        {
                            "type": "error",
                            "error": {"type": reply.error_type, "message": reply.message},
                        },
                    ),
                ]
                self._send_stream(frames)
                return
            if not stream:
                self._send_json(HTTPStatus.OK, message_json(reply, model))
                return
            self._send_stream(message_events(reply, model))

        def _send_stream(self, frames: list[bytes]) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("request-id", _next_id("req"))
            for name, value in api.response_headers.items():
                self.send_header(name, value)
            # No content-length: the stream ends when we close the connection.
            self.send_header("connection", "close")
            self.end_headers()
            for frame in frames:
                self.wfile.write(frame)
                self.wfile.flush()
            self.close_connection = True

    return Handler
