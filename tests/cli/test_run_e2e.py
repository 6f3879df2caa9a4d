"""`cc-executor run` end to end: the real CLI process against a real background daemon."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cc_executor.client import SyncWebSocketClient
from cc_executor.config import Settings
from cc_executor.server import daemon

pytestmark = pytest.mark.e2e

CLI_TIMEOUT_S = 30.0
FIRST_LINE_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state = tmp_path_factory.mktemp("e2e") / "state"
    configured = Settings(host="127.0.0.1", port=port, state_dir=state, terminate_grace_s=2.0)
    daemon.start_background(configured, timeout=CLI_TIMEOUT_S)
    try:
        yield configured
    finally:
        daemon.stop(configured, timeout=CLI_TIMEOUT_S)


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_EXECUTOR_")}
    env["CC_EXECUTOR_STATE_DIR"] = str(settings.state_dir)
    env["CC_EXECUTOR_PORT"] = str(settings.port)
    return env


def _cli(
    settings: Settings, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "cc_executor", *args],
        env=_env(settings),
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
        cwd=cwd,
    )


def test_hello_world(settings: Settings) -> None:
    result = _cli(settings, "run", "echo Hello, World!")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Hello, World!\n"


def test_exit_code_passes_through(settings: Settings) -> None:
    assert _cli(settings, "run", "exit 3").returncode == 3


def test_exact_bytes_on_both_streams_and_cwd(settings: Settings, tmp_path: Path) -> None:
    result = _cli(settings, "run", r"printf 'a\377b'; printf 'err' >&2; pwd", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"a\xffb" + str(tmp_path.resolve()).encode() + b"\n"
    assert result.stderr == b"err"


def test_timeout_exits_124(settings: Settings) -> None:
    assert _cli(settings, "run", "--timeout", "0.5", "sleep 30").returncode == 124


def test_ctrl_c_cancels_on_the_daemon(settings: Settings) -> None:
    command = "echo started; exec sleep 60"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cc_executor", "run", command],
        env=_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], FIRST_LINE_TIMEOUT_S)
        assert ready, "the command's first line never arrived"
        assert proc.stdout.readline() == b"started\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=CLI_TIMEOUT_S) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=CLI_TIMEOUT_S)

    client = SyncWebSocketClient(port=settings.port, token_file=settings.token_file)
    mine = [e for e in client.list_executions() if e.get("command") == command]
    assert len(mine) == 1
    assert mine[0]["state"] == "canceled"
    pid = mine[0]["pid"]
    assert isinstance(pid, int)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
