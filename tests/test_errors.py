"""The exception tree: each class fixes its JSON-RPC code and carries structured data."""

from __future__ import annotations

import pytest

from cc_executor.errors import (
    CCExecutorError,
    CommandNotAllowed,
    ExecutionNotFound,
    InvalidParams,
    InvalidRequest,
    InvalidTransition,
    LimitReached,
    MethodNotFound,
    ParseError,
    RequestError,
    ServiceError,
    StateError,
    error_from_wire,
)

CODES = {
    ParseError: -32700,
    InvalidRequest: -32600,
    MethodNotFound: -32601,
    InvalidParams: -32602,
    ServiceError: -32603,
    LimitReached: -32001,
    CommandNotAllowed: -32002,
    ExecutionNotFound: -32003,
    InvalidTransition: -32004,
}


@pytest.mark.parametrize(("cls", "code"), CODES.items())
def test_codes_and_round_trip(cls: type[CCExecutorError], code: int) -> None:
    exc = cls("boom", execution_id="e1", state="running")
    wire = exc.to_wire()
    assert wire == {
        "code": code,
        "message": "boom",
        "data": {"execution_id": "e1", "state": "running"},
    }
    back = error_from_wire(wire)
    assert type(back) is cls
    assert back.data == exc.data


def test_split_by_what_the_caller_does() -> None:
    assert issubclass(ExecutionNotFound, RequestError)
    assert issubclass(InvalidTransition, StateError)
    assert issubclass(LimitReached, StateError)
    assert not issubclass(ServiceError, RequestError | StateError)


def test_unknown_codes_and_odd_shapes_still_rebuild() -> None:
    odd = error_from_wire({"code": -1, "message": "custom", "data": ["not", "a", "dict"]})
    assert type(odd) is CCExecutorError
    assert odd.message == "custom"
    assert odd.data == {}
    assert error_from_wire({}).message == "unknown error"
