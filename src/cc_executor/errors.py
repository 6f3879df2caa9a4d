"""One exception tree for the whole project.

Split by what the caller can do about it::

    CCExecutorError                      code      what the caller does
    ├── RequestError                               fix your input
    │   ├── ParseError                   -32700
    │   ├── InvalidRequest               -32600
    │   ├── MethodNotFound               -32601
    │   ├── InvalidParams                -32602
    │   ├── CommandNotAllowed            -32002
    │   └── ExecutionNotFound            -32003
    ├── StateError                                 not now
    │   ├── LimitReached                 -32001    (too many executions, frame too large)
    │   └── InvalidTransition            -32004    (RESUME on a running execution, ...)
    └── ServiceError                     -32603    infrastructure failed; retry or report

Handlers raise these; the protocol dispatcher is the only place that turns them into JSON-RPC
error objects, and the client turns error objects back into the same classes with
:func:`error_from_wire`. Every class fixes its code and carries structured ``data``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "CCExecutorError",
    "CommandNotAllowed",
    "ExecutionNotFound",
    "InvalidParams",
    "InvalidRequest",
    "InvalidTransition",
    "LimitReached",
    "MethodNotFound",
    "ParseError",
    "RequestError",
    "ServiceError",
    "StateError",
    "error_from_wire",
]


class CCExecutorError(Exception):
    """Base of every error this project raises on purpose."""

    code: ClassVar[int] = -32603

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data: dict[str, Any] = data

    def to_wire(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` object for this exception."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data:
            error["data"] = self.data
        return error


class RequestError(CCExecutorError):
    """The request is wrong; sending it again unchanged fails again."""

    code = -32600


class ParseError(RequestError):
    code = -32700


class InvalidRequest(RequestError):
    code = -32600


class MethodNotFound(RequestError):
    code = -32601


class InvalidParams(RequestError):
    code = -32602


class CommandNotAllowed(RequestError):
    code = -32002


class ExecutionNotFound(RequestError):
    code = -32003


class StateError(CCExecutorError):
    """The request is fine but cannot be honoured in the current state."""

    code = -32004


class LimitReached(StateError):
    code = -32001


class InvalidTransition(StateError):
    code = -32004


class ServiceError(CCExecutorError):
    """Infrastructure failed (spawn, storage, network); not the caller's fault."""

    code = -32603


_BY_CODE: dict[int, type[CCExecutorError]] = {
    cls.code: cls
    for cls in (
        ParseError,
        InvalidRequest,
        MethodNotFound,
        InvalidParams,
        CommandNotAllowed,
        ExecutionNotFound,
        LimitReached,
        InvalidTransition,
        ServiceError,
    )
}


def error_from_wire(error: dict[str, Any]) -> CCExecutorError:
    """Rebuild the exception a server raised from its JSON-RPC ``error`` object."""
    code = error.get("code")
    cls = _BY_CODE.get(code, CCExecutorError) if isinstance(code, int) else CCExecutorError
    data = error.get("data")
    exc = cls(
        str(error.get("message", "unknown error")), **(data if isinstance(data, dict) else {})
    )
    return exc
