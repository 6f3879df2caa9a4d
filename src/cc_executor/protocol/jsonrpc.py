"""JSON-RPC 2.0 envelopes: parse what comes in, encode what goes out (orjson, compact).

Owns the envelope only: ``jsonrpc``/``id``/``method``/``params`` checks and compact encoding.
Params validation and turning handler exceptions into errors belong to ``dispatcher.py``; the
client side uses :func:`parse_message` and :func:`encode_request`.

Sans-I/O: text or bytes in, models or text out. Batch arrays are refused: every request of this
protocol may start long-lived work, and a batch would make their errors and ordering ambiguous.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import orjson
from pydantic import BaseModel

from cc_executor.errors import CCExecutorError, InvalidRequest, ParseError

__all__ = [
    "JSONRPC_VERSION",
    "Request",
    "RequestId",
    "encode_error",
    "encode_notification",
    "encode_request",
    "encode_result",
    "parse_message",
    "parse_request",
    "request_from_message",
    "request_id_of",
]

JSONRPC_VERSION = "2.0"

RequestId = int | str | None


@dataclass(frozen=True, slots=True)
class Request:
    """One validated JSON-RPC request (or notification, when it carries no ``id``)."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)
    id: RequestId = None
    is_notification: bool = False


def parse_message(raw: str | bytes) -> Any:
    """Decode one JSON text; raises :class:`ParseError` with the decoder's reason."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError("Parse error: not valid JSON", reason=str(exc)) from None


def parse_request(raw: str | bytes) -> Request:
    """Parse and check one request envelope (not its params: the dispatcher does that)."""
    return request_from_message(parse_message(raw))


def request_from_message(message: object) -> Request:
    """Check an already decoded envelope; raises :class:`InvalidRequest`."""
    if isinstance(message, list):
        raise InvalidRequest("Invalid Request: batch requests are not supported")
    if not isinstance(message, dict):
        raise InvalidRequest("Invalid Request: expected a JSON object")
    has_id = "id" in message
    request_id = message.get("id")
    if has_id and not _is_valid_id(request_id):
        raise InvalidRequest("Invalid Request: id must be a string, an integer or null")
    if message.get("jsonrpc") != JSONRPC_VERSION:
        raise InvalidRequest('Invalid Request: "jsonrpc" must be "2.0"')
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise InvalidRequest('Invalid Request: "method" must be a non-empty string')
    params = message.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidRequest(
            'Invalid Request: "params" must be an object (positional params are not supported)'
        )
    return Request(method=method, params=params, id=request_id, is_notification=not has_id)


def request_id_of(message: object) -> RequestId:
    """The id to answer an invalid request with: its own when usable, else null (JSON-RPC 5.1)."""
    if isinstance(message, dict):
        request_id = message.get("id")
        if _is_valid_id(request_id):
            return request_id
    return None


def _is_valid_id(value: object) -> TypeGuard[RequestId]:
    # bool is an int subclass; JSON-RPC ids are strings, numbers or null, never true/false.
    # Fractional numbers are refused too: the spec says SHOULD NOT, and they make poor keys.
    return value is None or (isinstance(value, int | str) and not isinstance(value, bool))


def _dump(obj: Mapping[str, Any]) -> str:
    return orjson.dumps(obj).decode()


def encode_result(request_id: RequestId, result: Mapping[str, Any] | BaseModel) -> str:
    """A success response; models are dumped in JSON mode without ``None`` fields.

    Raises ``TypeError`` when the result holds something JSON cannot carry (a handler bug).
    """
    body = (
        result.model_dump(mode="json", exclude_none=True)
        if isinstance(result, BaseModel)
        else result
    )
    return _dump({"jsonrpc": JSONRPC_VERSION, "id": request_id, "result": body})


def encode_error(request_id: RequestId, error: CCExecutorError) -> str:
    """An error response. Never fails: odd ``data`` values (a ``Path``, int keys) become text."""
    frame = {"jsonrpc": JSONRPC_VERSION, "id": request_id, "error": error.to_wire()}
    try:
        return orjson.dumps(frame, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        # e.g. an integer beyond 64 bits in data: drop data rather than lose the error.
        bare = {"code": error.code, "message": error.message}
        return _dump({"jsonrpc": JSONRPC_VERSION, "id": request_id, "error": bare})


def encode_notification(method: str, params: Mapping[str, Any]) -> str:
    """A notification frame (no ``id``); what the event log encodes once per event."""
    return _dump({"jsonrpc": JSONRPC_VERSION, "method": method, "params": params})


def encode_request(request_id: RequestId, method: str, params: Mapping[str, Any]) -> str:
    """A request frame, for clients."""
    return _dump({"jsonrpc": JSONRPC_VERSION, "id": request_id, "method": method, "params": params})
