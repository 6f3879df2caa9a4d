"""Route one incoming JSON-RPC frame to its handler and turn the outcome into one response frame.

This module owns the single exception-to-wire boundary of the server: handlers raise typed
:mod:`cc_executor.errors` exceptions (or return a result), and only :meth:`Dispatcher.dispatch`
turns them into JSON-RPC error objects. It does not own transport (the WebSocket door reads and
writes frames), connection state (the ``Ctx`` the door passes in) or what methods do (handlers).

Order of checks for one frame, each with its error code::

    size > max_frame_bytes       -32001 LimitReached    id null (checked before parsing)
    not JSON                     -32700 ParseError      id null
    not a request object         -32600 InvalidRequest  id of the request when usable, else null
    unknown method               -32601 MethodNotFound
    params fail the model        -32602 InvalidParams   data.errors = [{loc, msg, type}, ...]
    handler raises CCExecutorError  its own code and data
    handler raises anything else    -32603 "Internal error" (logged, no traceback on the wire)

Notifications (requests without ``id``) never get a response, not even an error one; envelope
errors (parse, invalid request, frame too large) are answered with id null because the id cannot
be known (JSON-RPC 2.0, section 5).

Sans-I/O apart from awaiting the handler's coroutine: no event loop is created or touched here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from loguru import logger
from pydantic import BaseModel, ValidationError

from cc_executor.errors import (
    CCExecutorError,
    InvalidParams,
    InvalidRequest,
    LimitReached,
    MethodNotFound,
    ParseError,
    ServiceError,
)
from cc_executor.protocol.jsonrpc import (
    Request,
    encode_error,
    encode_result,
    parse_message,
    request_from_message,
    request_id_of,
)

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "MAX_REPORTED_ERRORS",
    "Dispatcher",
    "Handler",
    "HandlerResult",
]

DEFAULT_MAX_FRAME_BYTES = 1024 * 1024  # 1 MiB: a request is a command, not a file upload
MAX_REPORTED_ERRORS = 16  # validation errors echoed in data.errors; the rest are only counted
_MAX_ECHO_CHARS = 64  # longest method name or field name echoed back, so errors stay small
_MAX_MESSAGE_CHARS = 300  # longest validation message echoed back

Ctx = TypeVar("Ctx")
P = TypeVar("P", bound=BaseModel)

HandlerResult = Mapping[str, Any] | BaseModel | None
"""What a handler returns; ``None`` becomes the empty result ``{}``."""
Handler = Callable[[Ctx, P], Awaitable[HandlerResult]]


@dataclass(frozen=True, slots=True)
class _Route(Generic[Ctx]):
    params_model: type[BaseModel]
    handler: Callable[[Ctx, Any], Awaitable[HandlerResult]]


def _clip(text: str, limit: int = _MAX_ECHO_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _frame_size(raw: str | bytes, limit: int) -> int:
    if isinstance(raw, bytes | bytearray | memoryview):
        return len(raw)
    # A character is 1..4 bytes in UTF-8; only encode when the length alone cannot decide.
    if len(raw) > limit or len(raw) * 4 <= limit:
        return len(raw)
    return len(raw.encode("utf-8", "surrogatepass"))


def _validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """JSON-safe ``{loc, msg, type}`` items, without echoing the (possibly huge) input."""
    items = exc.errors(include_url=False, include_input=False, include_context=False)
    return [
        {
            "loc": [_clip(part) if isinstance(part, str) else part for part in item["loc"]],
            "msg": _clip(item["msg"], _MAX_MESSAGE_CHARS),
            "type": item["type"],
        }
        for item in items[:MAX_REPORTED_ERRORS]
    ]


def _invalid_params(method: str, exc: ValidationError) -> InvalidParams:
    errors = _validation_errors(exc)
    summary = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'params'}: {error['msg']}"
        for error in errors[:3]
    )
    data: dict[str, Any] = {"method": method, "errors": errors}
    if exc.error_count() > len(errors):
        data["error_count"] = exc.error_count()
    return InvalidParams(f"Invalid params: {summary}", **data)


class Dispatcher(Generic[Ctx]):
    """Method table plus the one place where exceptions become JSON-RPC errors.

    ``Ctx`` is whatever the door needs per connection (its subscriptions, a send lock, ...);
    the dispatcher passes it through untouched.
    """

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be positive")
        self.max_frame_bytes = max_frame_bytes
        self._routes: dict[str, _Route[Ctx]] = {}

    @property
    def methods(self) -> frozenset[str]:
        """Names of the registered methods."""
        return frozenset(self._routes)

    def register(
        self,
        method: str,
        params_model: type[P],
        handler: Callable[[Ctx, P], Awaitable[HandlerResult]],
    ) -> None:
        """Route ``method`` to ``handler(ctx, params)`` after validating with ``params_model``."""
        if method in self._routes:
            raise ValueError(f"method {method!r} is already registered")
        self._routes[str(method)] = _Route(params_model, handler)

    async def dispatch(self, raw: str | bytes, ctx: Ctx) -> str | None:
        """The response frame for one incoming frame, or ``None`` for a notification."""
        request = self._envelope(raw)
        if isinstance(request, str):
            return request  # the error frame for a broken envelope
        outcome = await self._outcome(request, ctx)
        if request.is_notification:
            if isinstance(outcome, CCExecutorError):
                logger.debug("notification {} failed: {}", _clip(request.method), outcome)
            return None
        if isinstance(outcome, CCExecutorError):
            return encode_error(request.id, outcome)
        try:
            return encode_result(request.id, {} if outcome is None else outcome)
        except TypeError:
            logger.exception("result of {} is not JSON", request.method)
            return encode_error(request.id, ServiceError("Internal error"))

    async def _outcome(self, request: Request, ctx: Ctx) -> HandlerResult | CCExecutorError:
        try:
            return await self._call(request.method, request.params, ctx)
        except CCExecutorError as exc:
            return exc
        except Exception:
            # The one broad catch: a handler bug must cost one request, not the connection.
            logger.exception("handler for {} failed", _clip(request.method))
            return ServiceError("Internal error")

    def _envelope(self, raw: str | bytes) -> Request | str:
        """The request in ``raw``, or the error frame answering it (id null unless known)."""
        size = _frame_size(raw, self.max_frame_bytes)
        if size > self.max_frame_bytes:
            too_big = LimitReached("Frame too large", size=size, limit=self.max_frame_bytes)
            return encode_error(None, too_big)
        try:
            message = parse_message(raw)
        except ParseError as exc:
            return encode_error(None, exc)
        try:
            return request_from_message(message)
        except InvalidRequest as exc:
            return encode_error(request_id_of(message), exc)

    async def _call(self, method: str, params: dict[str, Any], ctx: Ctx) -> HandlerResult:
        route = self._routes.get(method)
        if route is None:
            raise MethodNotFound("Method not found", method=_clip(method))
        try:
            validated = route.params_model.model_validate(params)
        except ValidationError as exc:
            raise _invalid_params(method, exc) from None
        return await route.handler(ctx, validated)
