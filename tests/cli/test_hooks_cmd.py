"""`cc-executor hooks list|run|reload` through CliRunner, with a temp hooks dir."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.client.fake_daemon import TOKEN, FakeConn, FakeDaemon, fake_in_thread
from typer.testing import CliRunner

from cc_executor.cli.main import app

PROGRAM = Path(__file__).resolve().parents[1] / "programs" / "hook_program.py"
runner = CliRunner()

HOOK_FILE = """
from cc_executor.scheduler.hooks import HookResult, hook

def echo(ctx):
    return HookResult(message=f"{ctx.event} {ctx.execution_id} {ctx.metadata}")

@hook(required=True, timeout_s=2.5)
def gate(ctx):
    return HookResult(proceed=bool(ctx.metadata.get("allow")), message="gate says")

HOOKS = {"pre_execution": [echo, gate], "post_task": echo}
"""


@pytest.fixture
def env(tmp_path: Path, unused_tcp_port: int) -> dict[str, str]:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "demo.py").write_text(textwrap.dedent(HOOK_FILE), encoding="utf-8")
    (hooks / "broken.py").write_text("HOOKS = {\n", encoding="utf-8")
    (hooks / "hooks.json").write_text(
        json.dumps(
            {
                "hooks": [
                    {
                        "name": "failing",
                        "argv": [sys.executable, str(PROGRAM), "fail", "5"],
                        "events": ["post_execution"],
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    return {
        "CC_EXECUTOR_STATE_DIR": str(tmp_path / "state"),
        "CC_EXECUTOR_HOOKS_DIR": str(hooks),
        "CC_EXECUTOR_PORT": str(unused_tcp_port),
        "CC_EXECUTOR_TOKEN": "",
    }


def invoke(args: list[str], env: dict[str, str]) -> Any:
    clean = {k: v for k, v in env.items() if v}
    removed = [k for k, v in env.items() if not v]
    return runner.invoke(app, args, env={**clean, **dict.fromkeys(removed)})


def test_list_json(env: dict[str, str]) -> None:
    result = invoke(["hooks", "list", "--json"], env)
    assert result.exit_code == 0, result.output
    status = orjson.loads(result.stdout)
    names = [h["name"] for h in status["hooks"]]
    assert names == ["builtin.receipt", "demo.echo", "demo.gate", "failing"]
    gate = status["hooks"][2]
    assert (gate["required"], gate["timeout"]) == (True, 2.5)
    assert (status["hooks"][0]["agents"], gate["agents"]) == (["claude"], None)
    assert [Path(e["source"]).name for e in status["errors"]] == ["broken.py"]


def test_list_table(env: dict[str, str]) -> None:
    result = invoke(["hooks", "list"], env)
    assert result.exit_code == 0, result.output
    assert "demo.gate" in result.stdout
    assert "builtin" in result.stdout
    assert "claude" in result.stdout  # the receipt check runs for claude executions only
    assert "(enabled)" in result.stdout
    assert "broken.py" in result.stderr


def test_run_with_sample_context(env: dict[str, str]) -> None:
    result = invoke(["hooks", "run", "demo.echo"], env)
    assert result.exit_code == 0, result.output
    assert "demo.echo (pre_execution): ok, proceed=true" in result.stdout
    assert "pre_execution sample-execution {'sample': True}" in result.stdout


def test_run_with_event_and_context_json(env: dict[str, str]) -> None:
    args = ["hooks", "run", "demo.echo", "--event", "post_task", "--json"]
    result = invoke([*args, "--context", '{"execution_id": "x9", "metadata": {}}'], env)
    assert result.exit_code == 0, result.output
    answer = orjson.loads(result.stdout)
    assert answer["proceed"] is True
    assert answer["runs"][0]["message"] == "post_task x9 {}"


def test_run_exits_1_when_the_hook_blocks_or_fails(env: dict[str, str]) -> None:
    blocked = invoke(["hooks", "run", "demo.gate"], env)
    assert blocked.exit_code == 1
    assert "proceed=false" in blocked.stdout
    allowed = invoke(["hooks", "run", "demo.gate", "--context", '{"metadata": {"allow": 1}}'], env)
    assert allowed.exit_code == 0, allowed.output
    failed = invoke(["hooks", "run", "failing"], env)
    assert failed.exit_code == 1
    assert "exited with 5: something broke" in failed.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hooks", "run", "nope"], "no hook named 'nope'"),
        (["hooks", "run", "demo.echo", "--context", "{bad"], "not JSON"),
        (["hooks", "run", "demo.echo", "--context", "[1]"], "must be a JSON object"),
        (["hooks", "run", "demo.echo", "--context", '{"exit_code": "x"}'], "invalid --context"),
    ],
)
def test_run_usage_errors(env: dict[str, str], args: list[str], message: str) -> None:
    result = invoke(args, env)
    assert result.exit_code == 2
    assert message in result.stderr


def test_reload_without_a_daemon(env: dict[str, str]) -> None:
    result = invoke(["hooks", "reload"], env)
    assert result.exit_code == 0, result.output
    assert "reloaded locally: 4 hook(s), 1 load error(s)" in result.stdout
    assert "no daemon reachable" in result.stdout


def test_reload_shows_the_daemons_hook_status(env: dict[str, str]) -> None:
    def setup(fake: FakeDaemon) -> None:
        @fake.on("hook_status")
        async def hook_status(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
            return {
                "configured": True,
                "enabled": True,
                "hooks": [{"name": "x"}],
                "last_runs": [],
                "message": "1 hook(s) loaded, 0 load error(s)",
            }

    with fake_in_thread(setup) as fake:
        daemon_env = {**env, "CC_EXECUTOR_PORT": str(fake.port), "CC_EXECUTOR_TOKEN": TOKEN}
        result = invoke(["hooks", "reload"], daemon_env)
    assert result.exit_code == 0, result.output
    assert "the daemon reloads its hooks on SIGHUP" in result.stdout
    assert "daemon hook_status now: 1 hook(s) loaded, 0 load error(s) (1 hook(s))" in result.stdout
