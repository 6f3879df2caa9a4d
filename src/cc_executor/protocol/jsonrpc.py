"""JSON-RPC 2.0 envelopes: parse what comes in, encode what goes out (orjson, compact).

Sans-I/O: text or bytes in, models or text out. Batch arrays are refused: every request of this
protocol may start long-lived work, and a batch would make their errors and ordering ambiguous.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    message = parse_message(raw)
    if isinstance(message, list):
        raise InvalidRequest("Invalid Request: batch requests are not supported")
    if not isinstance(message, dict):
        raise InvalidRequest("Invalid Request: expected a JSON object")
    has_id = "id" in message
    request_id = message.get("id")
    # bool is an int subclass; JSON-RPC ids are strings, numbers or null, never true/false.
    if has_id and (
        isinstance(request_id, bool) or not isinstance(request_id, int | str | None)
    ):
        raise InvalidRequest("Invalid Request: id must be a string, an integer or null")
    if message.get("jsonrpc") != JSONRPC_VERSION:
        raise InvalidRequest('Invalid Request: "jsonrpc" must be "2.0"', id=request_id)
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise InvalidRequest('Invalid Request: "method" must be a non-empty string', id=request_id)
    params = message.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidRequest(
            'Invalid Request: "params" must be an object (positional params are not supported)',
            id=request_id,
        )
    return Request(method=method, params=params, id=request_id, is_notification=not has_id)


def _dump(obj: Mapping[str, Any]) -> str:
    return orjson.dumps(obj).decode()


def encode_result(request_id: RequestId, result: Mapping[str, Any] | BaseModel) -> str:
    body = result.model_dump(mode="json", exclude_none=True) if isinstance(result, BaseModel) else result
    return _dump({"jsonrpc": JSONRPC_VERSION, "id": request_id, "result": body})


def encode_error(request_id: RequestId, error: CCExecutorError) -> str:
    return _dump({"jsonrpc": JSONRPC_VERSION, "id": request_id, "error": error.to_wire()})


def encode_notification(method: str, params: Mapping[str, Any]) -> str:
    return _dump({"jsonrpc": JSONRPC_VERSION, "method": method, "params": params})


def encode_request(request_id: RequestId, method: str, params: Mapping[str, Any]) -> str:
    return _dump({"jsonrpc": JSONRPC_VERSION, "id": request_id, "method": method, "params": params})
