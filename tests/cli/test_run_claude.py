"""``run --claude`` and ``run "claude -p ..."``: views, exit codes, option errors (no Claude)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cc_executor.api import TaskEvent, TaskResult
from cc_executor.cli import run_cmd
from cc_executor.cli.claude_view import ClaudeCommandView, ClaudeView, exit_code_for_result
from cc_executor.cli.console import EXIT_DAEMON_UNREACHABLE
from cc_executor.cli.main import app
from cc_executor.client import Completed, Event
from cc_executor.client.events import event_from_notification


def agent(kind: str, **params: object) -> TaskEvent:
    return TaskEvent("e", "agent.event", 1, {"kind": kind, **params})


def test_view_counts_tools_tokens_and_cost(capsys: pytest.CaptureFixture[str]) -> None:
    raw = json.dumps({"message": {"usage": {"input_tokens": 30, "output_tokens": 15}}})
    view = ClaudeView(None)
    view.on_event(
        agent("tool_call", name="Bash", input={"command": "ls"}, message_id="m1", raw=raw)
    )
    view.on_event(agent("assistant_text", text="Running", message_id="m1", raw=raw))  # same message
    view.on_event(agent("tool_result", content="boom", is_error=True))
    view.on_event(agent("api_retry", attempt=1))
    view.on_event(agent("assistant_text", text="done", message_id="m2", raw="not json"))
    view.on_event(agent("result", total_cost_usd=0.5))
    view.on_event(TaskEvent("e", "process.completed", 2, {"status": "completed"}))
    assert view.totals.tools == 1
    assert (view.totals.input_tokens, view.totals.output_tokens) == (30, 15)
    assert view.line() == "tools 1 · tokens 30 in / 15 out · $0.5000"
    err = capsys.readouterr().err
    assert '→ tool_call: Bash {"command":"ls"}' in err
    assert "✗ tool_result: boom" in err
    assert "… api_retry" in err


@pytest.mark.parametrize(
    ("state", "success", "code"),
    [
        ("completed", True, 0),
        ("timeout", False, 124),
        ("canceled", False, 130),
        ("failed", False, 1),
    ],
)
def test_exit_codes(state: str, success: bool, code: int) -> None:
    result = TaskResult(
        task="t", prompt="p", execution_id="e", state=state, success=success, text=""
    )
    assert exit_code_for_result(result) == code


def test_run_claude_without_a_daemon(tmp_path: Path, unused_tcp_port: int) -> None:
    env = {"CC_EXECUTOR_STATE_DIR": str(tmp_path), "CC_EXECUTOR_PORT": str(unused_tcp_port)}
    result = CliRunner().invoke(app, ["run", "--claude", "What is 2+2?"], env=env)
    assert result.exit_code == EXIT_DAEMON_UNREACHABLE
    assert "--local" in result.output


def test_claude_only_options_need_claude(tmp_path: Path) -> None:
    env = {"CC_EXECUTOR_STATE_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, ["run", "--local", "echo", "hi"], env=env)
    assert result.exit_code == 1
    assert "need --claude" in result.output


# --- `run "claude -p ..."`: ClaudeCommandView ----------------------------------------------------


def client_event(method: str, **params: object) -> Event:
    return event_from_notification(method, {"execution_id": "e", "seq": 1, **params})


def done(status: str = "completed", exit_code: int = 0) -> Completed:
    event = client_event("process.completed", status=status, exit_code=exit_code)
    assert isinstance(event, Completed)
    return event


def test_command_view_switches_on_at_the_first_agent_event(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    view = ClaudeCommandView(out, err)
    init_line = '{"type":"system","subtype":"init","session_id":"s-1"}\n'
    view(client_event("process.output", type="stdout", data=init_line))
    assert view.mode == "undecided"
    view(client_event("agent.event", kind="init", session_id="s-1", raw=init_line))
    assert view.mode == "view"
    view(client_event("process.output", type="stdout", data='{"type":"result"}\n'))
    view(client_event("error.rate_limit_exceeded", kind="rate_limit", retry=True))
    view(client_event("process.output", type="stderr", data="a warning\n"))
    view(
        client_event(
            "agent.event",
            kind="result",
            result="2 + 2 = 4",
            total_cost_usd=0.25,
            usage={"input_tokens": 7, "output_tokens": 3},
        )
    )
    view.finish(done())
    assert out.getvalue() == b""  # no raw stream-json
    captured = capsys.readouterr()
    assert captured.out == "2 + 2 = 4\n"
    assert "rate_limit_exceeded" in captured.err
    assert "a warning" in captured.err
    assert "completed · tools 0 · tokens 7 in / 3 out · $0.2500 · session s-1" in captured.err


def test_command_view_writes_text_output_through() -> None:
    out, err = io.BytesIO(), io.BytesIO()
    view = ClaudeCommandView(out, err)
    view(client_event("process.output", type="stdout", data="plain "))
    assert view.mode == "raw"  # not stream-json: written at once
    view(client_event("process.output", type="stdout", data="four\n"))
    view(client_event("process.output", type="stderr", data="note\n"))
    view.finish(done())
    assert out.getvalue() == b"plain four\n"
    assert err.getvalue() == b"note\n"


def test_command_view_without_agent_events_flushes_at_the_end() -> None:
    out, err = io.BytesIO(), io.BytesIO()
    view = ClaudeCommandView(out, err)
    view(client_event("process.output", type="stdout", data='{"type":"result","result":"x"}'))
    assert view.mode == "undecided"
    view.finish(done("failed", 1))
    assert out.getvalue() == b'{"type":"result","result":"x"}'


def test_command_view_stops_holding_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cc_executor.cli.claude_view.HOLD_MAX_BYTES", 8)
    out = io.BytesIO()
    view = ClaudeCommandView(out, io.BytesIO())
    view(client_event("process.output", type="stdout", data="{" + "x" * 10))
    assert view.mode == "raw"
    assert out.getvalue() == b"{" + b"x" * 10


@pytest.mark.parametrize(
    ("args", "view"),
    [
        (["claude -p 'What is 2+2?'"], True),
        (["claude -p hi --output-format stream-json"], True),
        (["claude -p hi --output-format text"], False),
        (["claude -p hi | tee out"], False),
        (["echo", "hi"], False),
    ],
)
def test_renderer_choice(args: list[str], view: bool) -> None:
    renderer = run_cmd._renderer(" ".join(args), json_lines=False)
    assert isinstance(renderer, ClaudeCommandView) is view
    assert not isinstance(run_cmd._renderer(" ".join(args), json_lines=True), ClaudeCommandView)
    assert not isinstance(run_cmd._renderer(None, json_lines=False), ClaudeCommandView)
