"""The dispatcher: routing, validation and the one exception-to-wire boundary."""

from __future__ import annotations

import json
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger

from cc_executor.errors import ExecutionNotFound, InvalidTransition
from cc_executor.protocol.dispatcher import MAX_REPORTED_ERRORS, Dispatcher
from cc_executor.protocol.models import (
    ControlParams,
    EmptyParams,
    ExecuteParams,
    ExecuteResult,
    PongParams,
    StatusParams,
)
from cc_executor.protocol.names import Method

MiB = 1024 * 1024
KNOWN_CODES = {-32700, -32600, -32601, -32602, -32603, -32001, -32002, -32003, -32004}


@dataclass
class Ctx:
    calls: list[tuple[str, Any]] = field(default_factory=list)


async def _execute(ctx: Ctx, params: ExecuteParams) -> ExecuteResult:
    ctx.calls.append(("execute", params))
    return ExecuteResult(execution_id=params.execution_id or "generated", pid=42, pgid=42)


async def _status(ctx: Ctx, params: StatusParams) -> dict[str, Any]:
    ctx.calls.append(("status", params))
    if params.execution_id == "boom":
        raise RuntimeError("secret traceback detail")
    if params.execution_id == "weird":
        return {"value": object()}
    raise ExecutionNotFound("no such execution", execution_id=params.execution_id)


async def _control(ctx: Ctx, params: ControlParams) -> dict[str, Any]:
    raise InvalidTransition("cannot do that now", requested=str(params.type), state="running")


async def _nothing(ctx: Ctx, params: EmptyParams | PongParams) -> None:
    ctx.calls.append(("nothing", params))


def _dispatcher(max_frame_bytes: int = MiB) -> Dispatcher[Ctx]:
    dispatcher: Dispatcher[Ctx] = Dispatcher(max_frame_bytes=max_frame_bytes)
    dispatcher.register(Method.EXECUTE, ExecuteParams, _execute)
    dispatcher.register(Method.STATUS, StatusParams, _status)
    dispatcher.register(Method.CONTROL, ControlParams, _control)
    dispatcher.register(Method.HOOK_STATUS, EmptyParams, _nothing)
    dispatcher.register(Method.PONG, PongParams, _nothing)
    return dispatcher


def _request(method: str, params: Any = None, request_id: Any = 1) -> str:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        message["params"] = params
    return json.dumps(message)


def _assert_frame(frame: str | None) -> dict[str, Any] | None:
    """A well-formed JSON-RPC 2.0 response (or nothing)."""
    if frame is None:
        return None
    message = orjson.loads(frame)
    assert isinstance(message, dict)
    assert message["jsonrpc"] == "2.0"
    assert "id" in message
    assert message["id"] is None or isinstance(message["id"], int | str)
    assert ("result" in message) != ("error" in message)
    assert set(message) <= {"jsonrpc", "id", "result", "error"}
    if "error" in message:
        error = message["error"]
        assert error["code"] in KNOWN_CODES
        assert isinstance(error["message"], str)
        assert set(error) <= {"code", "message", "data"}
    return message


def _error(frame: str | None) -> dict[str, Any]:
    message = _assert_frame(frame)
    assert message is not None
    assert "error" in message, message
    return message


def _run(coro: Coroutine[Any, Any, str | None]) -> str | None:
    """Drive a dispatch whose handlers never suspend, without an event loop (sans-I/O)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: str | None = stop.value
        return result
    coro.close()
    raise AssertionError("dispatch suspended")


@pytest.fixture
def log_records() -> Iterator[list[str]]:
    records: list[str] = []
    sink = logger.add(records.append, level="DEBUG", format="{level} {message}\n{exception}")
    yield records
    logger.remove(sink)


BAD_INPUTS = [
    pytest.param("this is not json", -32700, None, id="not-json"),
    pytest.param(b"\xc3\x28", -32700, None, id="invalid-utf8"),
    pytest.param('[{"jsonrpc":"2.0","id":1,"method":"status"}]', -32600, None, id="batch"),
    pytest.param(_request("execute", {"command": "ls", "timeout": "10"}), -32602, 1, id="types"),
    pytest.param(_request("execute", {"command": 5}), -32602, 1, id="command-int"),
    pytest.param(_request("execute", [1, 2]), -32600, 1, id="positional-params"),
    pytest.param(_request("nope"), -32601, 1, id="unknown-method"),
    pytest.param(_request("status", {}, request_id=True), -32600, None, id="id-bool"),
    pytest.param(_request("status", {}, request_id=2.5), -32600, None, id="id-float"),
    pytest.param(_request("status", {}, request_id=[1]), -32600, None, id="id-list"),
    pytest.param(_request("execute", {"command": "ls\x00"}), -32602, 1, id="nul-in-command"),
    pytest.param('{"jsonrpc":"1.0","id":"a","method":"status"}', -32600, "a", id="jsonrpc-1.0"),
    pytest.param('{"jsonrpc":"2.0","method":7}', -32600, None, id="method-not-string"),
    pytest.param(_request("status", {"execution_id": "x"}), -32003, 1, id="handler-typed-error"),
    pytest.param(_request("control", {"type": "pause"}, "c"), -32004, "c", id="state-error"),
    pytest.param(_request("status", {"execution_id": "boom"}), -32603, 1, id="handler-bug"),
    pytest.param(_request("status", {"execution_id": "weird"}), -32603, 1, id="result-not-json"),
]


@pytest.mark.parametrize(("raw", "code", "request_id"), BAD_INPUTS)
async def test_bad_input_matrix(raw: str | bytes, code: int, request_id: object) -> None:
    error = _error(await _dispatcher().dispatch(raw, Ctx()))
    assert error["error"]["code"] == code
    assert error["id"] == request_id


@pytest.mark.parametrize("as_bytes", [False, True])
async def test_oversized_frame_is_refused_before_parsing(as_bytes: bool) -> None:
    raw = _request("execute", {"command": "x" * (2 * MiB)})
    frame = await _dispatcher().dispatch(raw.encode() if as_bytes else raw, Ctx())
    error = _error(frame)
    assert error["id"] is None
    assert error["error"]["code"] == -32001
    assert error["error"]["data"] == {"size": len(raw), "limit": MiB}


async def test_frame_size_counts_utf8_bytes_not_characters() -> None:
    dispatcher = _dispatcher(max_frame_bytes=1000)
    small = _request("status", {"execution_id": "x", "pad": "€" * 300})  # < 1000 characters
    assert _error(await dispatcher.dispatch(small, Ctx()))["error"]["code"] == -32001
    ok = _request("hook_status", {})
    assert _assert_frame(await dispatcher.dispatch(ok, Ctx())) is not None


async def test_success_passes_validated_params_and_ctx() -> None:
    ctx = Ctx()
    frame = await _dispatcher().dispatch(
        _request("execute", {"argv": ["ls"], "execution_id": "e1"}, "r"), ctx
    )
    assert orjson.loads(frame or "") == {
        "jsonrpc": "2.0",
        "id": "r",
        "result": {"execution_id": "e1", "status": "started", "pid": 42, "pgid": 42},
    }
    ((name, params),) = ctx.calls
    assert name == "execute"
    assert isinstance(params, ExecuteParams)
    assert params.argv == ["ls"]


async def test_none_result_is_an_empty_object() -> None:
    message = _assert_frame(await _dispatcher().dispatch(_request("hook_status"), Ctx()))
    assert message == {"jsonrpc": "2.0", "id": 1, "result": {}}


async def test_pong_accepts_anything_old_clients_send() -> None:
    frame = await _dispatcher().dispatch(_request("pong", {"ts": 1, "x": [1]}), Ctx())
    assert _assert_frame(frame) == {"jsonrpc": "2.0", "id": 1, "result": {}}


async def test_invalid_params_data_is_structured_and_does_not_echo_input() -> None:
    huge = "v" * 100_000
    frame = await _dispatcher().dispatch(
        _request("execute", {"command": "ls", "timeout": huge, "k" * 1000: 1}), Ctx()
    )
    error = _error(frame)["error"]
    assert error["message"].startswith("Invalid params: ")
    assert len(frame or "") < 2000
    locs = [item["loc"] for item in error["data"]["errors"]]
    assert ["timeout"] in locs
    assert all(set(item) == {"loc", "msg", "type"} for item in error["data"]["errors"])
    assert error["data"]["method"] == "execute"


async def test_validation_errors_are_capped() -> None:
    params = {"command": "ls", **{f"extra{i}": i for i in range(100)}}
    error = _error(await _dispatcher().dispatch(_request("execute", params), Ctx()))["error"]
    assert len(error["data"]["errors"]) == MAX_REPORTED_ERRORS
    assert error["data"]["error_count"] == 100


async def test_unknown_method_data_names_it() -> None:
    error = _error(await _dispatcher().dispatch(_request("x" * 10_000), Ctx()))["error"]
    assert error["code"] == -32601
    assert error["data"]["method"].startswith("xxx")
    assert len(error["data"]["method"]) < 100


@pytest.mark.parametrize(
    "raw",
    [
        '{"jsonrpc":"2.0","method":"nope"}',
        '{"jsonrpc":"2.0","method":"execute","params":{"command":5}}',
        '{"jsonrpc":"2.0","method":"status","params":{"execution_id":"x"}}',
        '{"jsonrpc":"2.0","method":"status","params":{"execution_id":"boom"}}',
        '{"jsonrpc":"2.0","method":"hook_status"}',
    ],
)
async def test_notifications_never_get_a_response(raw: str) -> None:
    assert await _dispatcher().dispatch(raw, Ctx()) is None


async def test_handler_bug_is_logged_but_not_leaked(log_records: list[str]) -> None:
    frame = await _dispatcher().dispatch(_request("status", {"execution_id": "boom"}), Ctx())
    error = _error(frame)["error"]
    assert error == {"code": -32603, "message": "Internal error"}
    assert "secret" not in (frame or "")
    assert any("RuntimeError: secret traceback detail" in record for record in log_records)


def test_register_twice_is_a_bug() -> None:
    dispatcher = _dispatcher()
    assert Method.STATUS in dispatcher.methods
    with pytest.raises(ValueError, match="already registered"):
        dispatcher.register(Method.STATUS, StatusParams, _status)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
param_dicts = st.dictionaries(
    st.sampled_from(["command", "argv", "agent", "prompt", "timeout", "execution_id", "type", "x"]),
    json_values,
    max_size=4,
)
requests = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "method": st.sampled_from([*map(str, Method), "nope"])},
    optional={"id": st.integers(0, 99) | st.text(max_size=5) | json_values, "params": param_dicts},
)


@settings(max_examples=300)
@given(st.text() | st.binary())
def test_fuzz_any_frame_gives_a_valid_response_or_none(raw: str | bytes) -> None:
    _assert_frame(_run(_dispatcher(max_frame_bytes=4096).dispatch(raw, Ctx())))


@settings(max_examples=300)
@given(requests)
def test_fuzz_requests_give_a_valid_response_or_none(message: dict[str, Any]) -> None:
    frame = _run(_dispatcher().dispatch(json.dumps(message), Ctx()))
    response = _assert_frame(frame)
    if "id" not in message:
        assert response is None
    else:
        assert response is not None
