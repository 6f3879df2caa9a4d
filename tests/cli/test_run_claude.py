"""``run --claude``: the view's bookkeeping, exit codes, and option errors (no Claude needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cc_executor.api import TaskEvent, TaskResult
from cc_executor.cli.claude_view import ClaudeView, exit_code_for_result
from cc_executor.cli.console import EXIT_DAEMON_UNREACHABLE
from cc_executor.cli.main import app


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
