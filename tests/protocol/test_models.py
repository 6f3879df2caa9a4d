"""Params, result and notification models: strict validation of what comes in."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from cc_executor.protocol.chunking import OutputChunker
from cc_executor.protocol.models import (
    MAX_LIST_LIMIT,
    METHOD_PARAMS,
    METHOD_RESULTS,
    NOTIFICATION_PARAMS,
    AgentEventParams,
    AttachParams,
    ConnectedParams,
    ControlParams,
    EmptyParams,
    ExecuteParams,
    ExecuteResult,
    ExecutionInfo,
    InputParams,
    ListParams,
    ListResult,
    PongParams,
    ProcessOutputParams,
    StatusParams,
)
from cc_executor.protocol.names import ControlType, Method, Notification


def _execute(**params: Any) -> ExecuteParams:
    return ExecuteParams.model_validate(params)


def _rejects(model: type[Any], params: dict[str, Any]) -> list[Any]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(params)
    return [tuple(e["loc"]) for e in caught.value.errors()]


def test_execute_command() -> None:
    params = _execute(command="echo hi", timeout=5, env={"A": "1"}, execution_id="job-1:a.b")
    assert params.command == "echo hi"
    assert params.timeout == 5.0
    assert params.stdin is False
    assert params.timeout_includes_paused is False


def test_execute_argv_and_agent() -> None:
    assert _execute(argv=["ls", "-l"]).argv == ["ls", "-l"]
    hostile = "$(rm -rf /); `reboot` && echo '\"; DROP TABLE x; --\n\t\u202e"
    params = _execute(agent="claude", prompt=hostile, agent_options={"model": "x"})
    assert params.prompt == hostile


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"command": "a", "argv": ["b"]},
        {"command": "a", "agent": "claude", "prompt": "p"},
        {"agent": "claude"},
        {"command": "a", "prompt": "p"},
        {"command": "a", "agent_options": {}},
        {"argv": []},
        {"argv": [""]},
        {"command": ""},
    ],
)
def test_execute_needs_exactly_one_target(params: dict[str, Any]) -> None:
    _rejects(ExecuteParams, params)


@pytest.mark.parametrize(
    "params",
    [
        {"command": "echo\x00hi"},
        {"argv": ["ls", "a\x00b"]},
        {"agent": "claude", "prompt": "p\x00"},
        {"command": "ls", "cwd": "/tmp\x00"},
        {"command": "ls", "env": {"A": "x\x00"}},
        {"command": "ls", "env": {"A\x00": "x"}},
    ],
)
def test_nul_never_reaches_exec(params: dict[str, Any]) -> None:
    _rejects(ExecuteParams, params)


@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        ({"timeout": "10"}, ("timeout",)),
        ({"timeout": True}, ("timeout",)),
        ({"timeout": 0}, ("timeout",)),
        ({"timeout": -1.5}, ("timeout",)),
        ({"timeout": 1e12}, ("timeout",)),
        ({"idle_timeout": "1"}, ("idle_timeout",)),
        ({"stdin": "true"}, ("stdin",)),
        ({"stdin": 1}, ("stdin",)),
        ({"env": {"A": 1}}, ("env", "A")),
        ({"env": {"A=B": "x"}}, ("env", "A=B", "[key]")),
        ({"execution_id": "has space"}, ("execution_id",)),
        ({"execution_id": "x" * 129}, ("execution_id",)),
        ({"execution_id": 5}, ("execution_id",)),
        ({"cwd": 5}, ("cwd",)),
        ({"surprise": 1}, ("surprise",)),
    ],
)
def test_execute_wrong_types(extra: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert loc in _rejects(ExecuteParams, {"command": "ls", **extra})


def test_execute_command_must_be_a_string() -> None:
    assert ("command",) in _rejects(ExecuteParams, {"command": ["ls"]})
    assert ("argv", 0) in _rejects(ExecuteParams, {"argv": [1]})


@pytest.mark.parametrize("value", ["PAUSE", "pause", "Resume", "cancel"])
def test_control_type_is_case_insensitive(value: str) -> None:
    params = ControlParams.model_validate({"type": value})
    assert params.type is ControlType(value.upper())
    assert params.execution_id is None


@pytest.mark.parametrize("value", ["STOP", 1, None, ""])
def test_control_type_rejects_others(value: object) -> None:
    _rejects(ControlParams, {"type": value})


def test_list_params() -> None:
    assert ListParams.model_validate({}).limit == 100
    assert ListParams.model_validate({}).states is None
    assert ListParams.model_validate({"state": "running"}).states == {"running"}
    assert ListParams.model_validate({"state": ["a", "b"]}).states == {"a", "b"}
    for bad in (0, MAX_LIST_LIMIT + 1, "5", 2.0):
        _rejects(ListParams, {"limit": bad})


def test_attach_params() -> None:
    assert AttachParams.model_validate({"execution_id": "e"}).after_seq == 0
    _rejects(AttachParams, {"execution_id": "e", "after_seq": -1})
    _rejects(AttachParams, {"execution_id": "e", "after_seq": "3"})
    _rejects(AttachParams, {})
    _rejects(StatusParams, {"execution_id": None})


def test_input_params() -> None:
    text = InputParams.model_validate({"execution_id": "e", "data": "héllo\x00"})
    assert text.to_bytes() == "héllo\x00".encode()
    raw = bytes(range(256))
    b64 = InputParams.model_validate(
        {"execution_id": "e", "data": base64.b64encode(raw).decode(), "encoding": "base64"}
    )
    assert b64.to_bytes() == raw
    _rejects(InputParams, {"execution_id": "e", "data": "!!!", "encoding": "base64"})
    _rejects(InputParams, {"execution_id": "e", "data": "x", "encoding": "latin-1"})
    _rejects(InputParams, {"execution_id": "e", "data": "\ud800"})
    _rejects(InputParams, {"execution_id": "e", "data": 5})


def test_empty_and_pong_params() -> None:
    _rejects(EmptyParams, {"x": 1})
    assert PongParams.model_validate({"anything": [1, 2], "ts": 3}) is not None


def test_every_method_and_notification_has_a_model() -> None:
    assert set(METHOD_PARAMS) == set(Method)
    assert set(METHOD_RESULTS) == set(Method)
    assert set(NOTIFICATION_PARAMS) == set(Notification)


def test_results_dump_for_the_wire() -> None:
    result = ExecuteResult(execution_id="e", pid=10, pgid=10)
    assert result.model_dump(mode="json") == {
        "execution_id": "e",
        "status": "started",
        "pid": 10,
        "pgid": 10,
    }
    info = ExecutionInfo(execution_id="e", state="running", command="ls", created_at=1.0)
    listing = ListResult.model_validate({"executions": [info.model_dump()], "future": 1})
    assert listing.executions[0].last_seq == 0


def test_output_pieces_validate_as_notification_params() -> None:
    chunker = OutputChunker("stderr", max_bytes=16)
    pieces = chunker.feed(b"x" * 40 + b"\xff") + chunker.flush()
    for seq, piece in enumerate(pieces, start=1):
        ProcessOutputParams.model_validate({"execution_id": "e", "seq": seq, **piece.to_params()})


def test_agent_event_keeps_extra_fields() -> None:
    event = AgentEventParams.model_validate(
        {"execution_id": "e", "seq": 3, "kind": "tool.call", "raw": "{}", "tool": "Bash"}
    )
    assert event.model_dump()["tool"] == "Bash"


def test_connected_accepts_open_capabilities() -> None:
    hello = ConnectedParams.model_validate(
        {
            "session_id": "s",
            "version": "0.1.0",
            "protocol_version": "1.0",
            "capabilities": {"methods": ["execute"], "argv": True},
        }
    )
    assert hello.capabilities.model_dump()["argv"] is True
