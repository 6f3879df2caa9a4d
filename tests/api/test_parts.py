"""The pure parts: JSON parsing, outcomes, events, history export, URLs, exports."""

from __future__ import annotations

import json

import pytest

import cc_executor
import cc_executor.api
import cc_executor.client.cc_execute as legacy
from cc_executor.api import TaskEvent, parse_json_answer
from cc_executor.api.events import event_from_frame
from cc_executor.api.result import outcome_from_events
from cc_executor.api.runners import daemon_url


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
        ("```\n[1, 2]\n```", [1, 2]),
        ('Here you go: {"a": 1} hope it helps', {"a": 1}),
        ("prefix [true, null] suffix", [True, None]),
        ("42", 42),
    ],
)
def test_parse_json_answer(text: str, value: object) -> None:
    assert parse_json_answer(text) == value


@pytest.mark.parametrize("text", ["", "no json here", "{broken", "```json\n{oops\n```"])
def test_parse_json_answer_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="no JSON value"):
        parse_json_answer(text)


def test_outcome_takes_the_last_attempt() -> None:
    def agent(seq: int, **params: object) -> TaskEvent:
        return TaskEvent("e", "agent.event", seq, params)

    events = [
        agent(1, kind="init", session_id="s1"),
        agent(2, kind="result", is_error=True, result="429", session_id="s1"),
        agent(3, kind="init", session_id="s2"),
        agent(4, kind="result", is_error=False, result="ok", total_cost_usd=1, num_turns=2),
        TaskEvent("e", "process.completed", 5, {"status": "completed", "exit_code": 0}),
    ]
    outcome = outcome_from_events("e", events)
    assert outcome.success
    assert outcome.text == "ok"
    assert outcome.session_id == "s2"
    assert outcome.total_cost_usd == 1.0
    assert outcome.num_turns == 2


def test_outcome_reports_process_errors() -> None:
    events = [
        TaskEvent("e", "process.error", 1, {"error": "spawn failed"}),
        TaskEvent("e", "process.completed", 2, {"status": "failed", "exit_code": 1}),
    ]
    outcome = outcome_from_events("e", events)
    assert not outcome.success
    assert outcome.error == "spawn failed"
    assert outcome_from_events("e", []).state == "lost"


def test_events_from_frames_and_summaries() -> None:
    frame = json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "agent.event",
            "params": {
                "execution_id": "abcdef123",
                "seq": 3,
                "kind": "tool_call",
                "name": "Bash",
                "input": {"command": "ls"},
            },
        }
    )
    event = event_from_frame(frame)
    assert (event.execution_id, event.seq, event.kind) == ("abcdef123", 3, "tool_call")
    assert event.summary() == 'tool_call: Bash {"command":"ls"}'
    assert str(event) == 'abcdef12 tool_call: Bash {"command":"ls"}'
    assert event.to_dict()["method"] == "agent.event"
    done = TaskEvent("e", "process.completed", 9, {"status": "completed"})
    assert done.kind is None
    assert done.summary() == "process.completed completed"
    long = TaskEvent("e", "agent.event", 1, {"kind": "assistant_text", "text": "x" * 500})
    assert len(long.summary()) == 120
    assert TaskEvent("e", "agent.event", 1, {"kind": "init"}).summary() == "init"
    result = TaskEvent("e", "agent.event", 1, {"kind": "result", "subtype": "success"})
    assert result.summary() == "result: success"
    tool = TaskEvent("e", "agent.event", 1, {"kind": "tool_result", "content": "hi"})
    assert tool.summary() == "tool_result: hi"


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("ws://127.0.0.1:8003/ws/mcp", "ws://127.0.0.1:8003/ws/mcp"),
        ("ws://127.0.0.1:8003", "ws://127.0.0.1:8003/ws/mcp"),
        ("http://localhost:9000/", "ws://localhost:9000/ws/mcp"),
        ("https://example.org", "wss://example.org/ws/mcp"),
        ("127.0.0.1:8003", "ws://127.0.0.1:8003/ws/mcp"),
    ],
)
def test_daemon_url(given: str, url: str) -> None:
    assert daemon_url(given) == url


def test_exports() -> None:
    names = {
        "acc_execute",
        "cc_execute",
        "cc_execute_list",
        "cc_execute_task_list",
        "export_execution_history",
        "verify_execution",
    }
    new_names = {"resume", "aresume"}  # not in the earlier tool's module
    assert set(cc_executor.__all__) == names | new_names | {"__version__"}
    for name in names | new_names:
        assert getattr(cc_executor, name) is getattr(cc_executor.api, name)
    for name in names:
        assert getattr(legacy, name) is getattr(cc_executor.api, name)
    import importlib
    import types

    importlib.import_module("cc_executor.api.amend")  # a submodule named like an export

    for name in cc_executor.api.__all__:
        assert not isinstance(getattr(cc_executor.api, name), types.ModuleType), name
    assert set(cc_executor.api.__all__) <= set(dir(cc_executor.api))
    with pytest.raises(AttributeError):
        cc_executor.no_such_name  # noqa: B018
    with pytest.raises(AttributeError, match=r"cc_executor\.api"):
        cc_executor.api.no_such_name  # noqa: B018


def _fresh_python(code: str) -> list[str]:
    """The lines ``code`` prints in a fresh interpreter (what it imports is its own)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_top_level_import_is_light() -> None:
    code = (
        "import sys, cc_executor; "
        "print(any(m.startswith(('cc_executor.api', 'cc_executor.supervisor', 'fastapi')) "
        "for m in sys.modules))"
    )
    assert _fresh_python(code) == ["False"]


def test_one_api_module_does_not_load_the_rest() -> None:
    # The daemon's receipt hook imports cc_executor.api.events: that must not bring the client
    # (and websockets' client stack) into an idle daemon.
    code = (
        "import sys, cc_executor.api.events, cc_executor.api as api; "
        "print(sorted(m for m in sys.modules if m.startswith('cc_executor.client'))); "
        "api.cc_execute; print('cc_executor.api.execute' in sys.modules)"
    )
    assert _fresh_python(code) == ["[]", "True"]
