"""JSON-RPC envelopes: parsing what comes in, encoding what goes out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from cc_executor.errors import (
    CCExecutorError,
    ExecutionNotFound,
    InvalidRequest,
    ParseError,
    error_from_wire,
)
from cc_executor.protocol.jsonrpc import (
    Request,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
    parse_message,
    parse_request,
    request_id_of,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
envelope_keys = st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error"])
envelopes = st.dictionaries(
    envelope_keys,
    json_values | st.just("2.0") | st.sampled_from(["execute", "status"]),
    max_size=5,
)


def test_request_with_id() -> None:
    request = parse_request(b'{"jsonrpc":"2.0","id":7,"method":"status","params":{"a":1}}')
    assert request == Request(method="status", params={"a": 1}, id=7, is_notification=False)


def test_notification_has_no_id() -> None:
    request = parse_request('{"jsonrpc":"2.0","method":"pong"}')
    assert request.is_notification
    assert request.params == {}


def test_explicit_null_id_is_a_request_not_a_notification() -> None:
    request = parse_request('{"jsonrpc":"2.0","id":null,"method":"pong","params":null}')
    assert not request.is_notification
    assert request.id is None
    assert request.params == {}


def test_string_id_kept() -> None:
    assert parse_request('{"jsonrpc":"2.0","id":"abc","method":"x"}').id == "abc"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("not json", ParseError),
        (b"\xff\xfe", ParseError),
        ("", ParseError),
        ('{"jsonrpc":"2.0","method":"x"', ParseError),
        ('[{"jsonrpc":"2.0","id":1,"method":"x"}]', InvalidRequest),
        ("[]", InvalidRequest),
        ('"a string"', InvalidRequest),
        ("42", InvalidRequest),
        ('{"jsonrpc":"2.0","id":true,"method":"x"}', InvalidRequest),
        ('{"jsonrpc":"2.0","id":1.5,"method":"x"}', InvalidRequest),
        ('{"jsonrpc":"2.0","id":[1],"method":"x"}', InvalidRequest),
        ('{"jsonrpc":"2.0","id":{},"method":"x"}', InvalidRequest),
        ('{"id":1,"method":"x"}', InvalidRequest),
        ('{"jsonrpc":"1.0","id":1,"method":"x"}', InvalidRequest),
        ('{"jsonrpc":"2.0","id":1}', InvalidRequest),
        ('{"jsonrpc":"2.0","id":1,"method":""}', InvalidRequest),
        ('{"jsonrpc":"2.0","id":1,"method":5}', InvalidRequest),
        ('{"jsonrpc":"2.0","id":1,"method":"x","params":[1,2]}', InvalidRequest),
        ('{"jsonrpc":"2.0","id":1,"method":"x","params":"p"}', InvalidRequest),
    ],
)
def test_bad_envelopes(raw: str | bytes, error: type[CCExecutorError]) -> None:
    with pytest.raises(error) as caught:
        parse_request(raw)
    assert type(caught.value) is error


def test_parse_error_carries_reason() -> None:
    with pytest.raises(ParseError) as caught:
        parse_message("{")
    assert caught.value.code == -32700
    assert caught.value.data["reason"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"id": 3}, 3),
        ({"id": "x"}, "x"),
        ({"id": True}, None),
        ({"id": 1.5}, None),
        ({}, None),
        ([{"id": 3}], None),
        ("text", None),
    ],
)
def test_request_id_of(message: object, expected: object) -> None:
    assert request_id_of(message) == expected


@given(st.text())
def test_parse_request_any_text_is_request_or_protocol_error(raw: str) -> None:
    _parse_or_error(raw)


@given(st.binary())
def test_parse_request_any_bytes_is_request_or_protocol_error(raw: bytes) -> None:
    _parse_or_error(raw)


@given(json_values | envelopes)
def test_parse_request_any_json_is_request_or_protocol_error(value: Any) -> None:
    _parse_or_error(json.dumps(value))


def _parse_or_error(raw: str | bytes) -> None:
    try:
        request = parse_request(raw)
    except (ParseError, InvalidRequest):
        return
    assert isinstance(request, Request)
    assert isinstance(request.method, str)
    assert request.method
    assert isinstance(request.params, dict)
    assert request.id is None or isinstance(request.id, int | str)
    assert not isinstance(request.id, bool)


class _Result(BaseModel):
    execution_id: str
    exit_code: int | None = None


def test_encode_result_dumps_models_without_none() -> None:
    frame = orjson.loads(encode_result(1, _Result(execution_id="e1")))
    assert frame == {"jsonrpc": "2.0", "id": 1, "result": {"execution_id": "e1"}}


def test_encode_result_mapping() -> None:
    assert orjson.loads(encode_result("a", {"x": [1]})) == {
        "jsonrpc": "2.0",
        "id": "a",
        "result": {"x": [1]},
    }


def test_encode_error_round_trips_through_error_from_wire() -> None:
    frame = orjson.loads(encode_error(4, ExecutionNotFound("no such execution", execution_id="e")))
    assert frame["id"] == 4
    rebuilt = error_from_wire(frame["error"])
    assert type(rebuilt) is ExecutionNotFound
    assert rebuilt.data == {"execution_id": "e"}


def test_encode_error_never_fails_on_odd_data() -> None:
    frame = orjson.loads(encode_error(None, ExecutionNotFound("x", path=Path("/tmp"), m={1: 2})))
    assert frame["error"]["data"] == {"path": "/tmp", "m": {"1": 2}}
    huge = orjson.loads(encode_error(None, ExecutionNotFound("x", n=2**70)))
    assert huge["error"] == {"code": -32003, "message": "x"}


def test_encode_notification_and_request() -> None:
    assert orjson.loads(encode_notification("process.paused", {"seq": 1})) == {
        "jsonrpc": "2.0",
        "method": "process.paused",
        "params": {"seq": 1},
    }
    request = parse_request(encode_request(9, "status", {"execution_id": "e"}))
    assert request == Request(method="status", params={"execution_id": "e"}, id=9)
