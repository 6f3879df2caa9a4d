"""The typer app through CliRunner: version, config, token, status, and `run` against a fake."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.client.fake_daemon import (
    TOKEN,
    FakeConn,
    FakeDaemon,
    fake_in_thread,
    script,
    serve_script,
)
from typer.testing import CliRunner

from cc_executor import __version__
from cc_executor.cli.console import EXIT_DAEMON_UNREACHABLE, EXIT_NOT_RUNNING
from cc_executor.cli.main import app
from cc_executor.cli.run_cmd import exit_code_for
from cc_executor.client import Completed

SECRET = "super-secret-token-value-42"


@pytest.fixture
def env(tmp_path: Path, unused_tcp_port: int) -> dict[str, str]:
    """An isolated configuration: its own state dir and a port nothing listens on."""
    return {
        "CC_EXECUTOR_STATE_DIR": str(tmp_path / "state"),
        "CC_EXECUTOR_PORT": str(unused_tcp_port),
        "CC_EXECUTOR_TOKEN": "",
    }


runner = CliRunner()


def invoke(args: list[str], env: dict[str, str]) -> Any:
    clean = {k: v for k, v in env.items() if v}
    removed = [k for k, v in env.items() if not v]
    return runner.invoke(app, args, env={**clean, **dict.fromkeys(removed)})


def test_version(env: dict[str, str]) -> None:
    result = invoke(["--version"], env)
    assert result.exit_code == 0
    assert result.stdout.strip() == f"cc-executor {__version__}"


def test_config_show_masks_the_token(env: dict[str, str]) -> None:
    result = invoke(["config", "show"], {**env, "CC_EXECUTOR_TOKEN": SECRET})
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "********" in result.output
    assert "terminate_grace_s" in result.output

    as_json = invoke(["config", "show", "--json"], {**env, "CC_EXECUTOR_TOKEN": SECRET})
    shown = orjson.loads(as_json.stdout)
    assert shown["token"] == "********"
    assert shown["port"] == int(env["CC_EXECUTOR_PORT"])
    assert shown["token_file"] == str(Path(env["CC_EXECUTOR_STATE_DIR"]) / "token")
    assert SECRET not in as_json.output


def test_server_token_creates_a_0600_file_and_prints_it(env: dict[str, str]) -> None:
    first = invoke(["server", "token"], env)
    assert first.exit_code == 0, first.output
    token_file = Path(env["CC_EXECUTOR_STATE_DIR"]) / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert first.stdout.strip() == token_file.read_text().strip()
    again = invoke(["server", "token"], env)
    assert again.stdout == first.stdout


def test_server_status_and_stop_without_a_daemon(env: dict[str, str]) -> None:
    status = invoke(["server", "status", "--json"], env)
    assert status.exit_code == EXIT_NOT_RUNNING
    info = orjson.loads(status.stdout)
    assert info["running"] is False
    assert info["pid"] is None
    stop = invoke(["server", "stop"], env)
    assert stop.exit_code == 0
    assert "no cc-executor daemon running" in stop.stdout


def test_run_without_a_daemon_says_how_to_start_it(env: dict[str, str]) -> None:
    result = invoke(["run", "echo hi"], env)
    assert result.exit_code == EXIT_DAEMON_UNREACHABLE
    assert "cc-executor server start" in result.stderr


def _fake_env(env: dict[str, str], fake: FakeDaemon) -> dict[str, str]:
    return {**env, "CC_EXECUTOR_PORT": str(fake.port), "CC_EXECUTOR_TOKEN": TOKEN}


def test_run_streams_exact_bytes_and_exits_with_the_code(env: dict[str, str]) -> None:
    def setup(fake: FakeDaemon) -> None:
        serve_script(fake, lambda eid: script(eid, [b"out\xff", b"put\n"], 3, b"err\n"))

    with fake_in_thread(setup) as fake:
        result = invoke(["run", "printf ...; exit 3"], _fake_env(env, fake))
    assert result.exit_code == 3
    assert result.stdout_bytes == b"out\xffput\n"
    assert result.stderr_bytes == b"err\n"


def test_run_json_prints_one_line_per_event(env: dict[str, str]) -> None:
    def setup(fake: FakeDaemon) -> None:
        serve_script(fake, lambda eid: script(eid, [b"hi\n"]))

    with fake_in_thread(setup) as fake:
        result = invoke(["run", "--json", "echo hi"], _fake_env(env, fake))
    assert result.exit_code == 0
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [line["method"] for line in lines] == [
        "process.started",
        "process.output",
        "process.completed",
    ]
    assert lines[1]["params"]["data"] == "hi\n"


def test_run_no_shell_sends_argv_and_cwd(env: dict[str, str], tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def setup(fake: FakeDaemon) -> None:
        serve_script(fake, lambda eid: script(eid, []))
        inner = fake.handlers["execute"]

        async def execute(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any] | None:
            seen.append(params)
            return await inner(conn, params)

        fake.handlers["execute"] = execute

    with fake_in_thread(setup) as fake:
        args = ["run", "--no-shell", "--cwd", str(tmp_path), "--timeout", "7", "ls", "-la"]
        result = invoke(args, _fake_env(env, fake))
    assert result.exit_code == 0, result.output
    assert seen[0]["argv"] == ["ls", "-la"]
    assert "command" not in seen[0]
    assert seen[0]["cwd"] == str(tmp_path.resolve())
    assert seen[0]["timeout"] == 7


@pytest.mark.parametrize(
    ("status", "exit_code", "signal", "expected"),
    [
        ("completed", 0, None, 0),
        ("failed", 3, None, 3),
        ("timeout", None, 9, 124),
        ("canceled", None, 15, 130),
        ("failed", None, 9, 137),
        ("failed", None, None, 1),
        ("failed", -15, None, 143),
    ],
)
def test_exit_code_for(
    status: str, exit_code: int | None, signal: int | None, expected: int
) -> None:
    completed = Completed(execution_id="e", status=status, exit_code=exit_code, signal=signal)
    assert exit_code_for(completed) == expected
