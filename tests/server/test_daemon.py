"""The daemon lifecycle with real processes: background start, status, refusal of a second
daemon, stop. Each test uses its own state dir and a free port; every wait is bounded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from tests.processes import marked_alive
from tests.server.conftest import free_port

from cc_executor import __version__
from cc_executor.client import SyncWebSocketClient
from cc_executor.config import Settings
from cc_executor.server import daemon

SUBPROCESS_TIMEOUT_S = 30.0


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        host="127.0.0.1", port=free_port(), state_dir=tmp_path / "state", terminate_grace_s=1.0
    )


def _foreground(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **daemon.settings_env(settings)}
    return subprocess.run(
        [sys.executable, "-m", "cc_executor", "server", "start", "--foreground"],
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )


@pytest.fixture
def background(tmp_path: Path) -> Iterator[tuple[Settings, int]]:
    settings = _settings(tmp_path)
    pid = daemon.start_background(settings, timeout=SUBPROCESS_TIMEOUT_S)
    try:
        yield settings, pid
    finally:
        daemon.stop(settings, timeout=SUBPROCESS_TIMEOUT_S)


def test_settings_env_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(
        port=1234,
        state_dir=tmp_path,
        allowed_origins=["http://example.test"],
        token="tok",
        auth_required=False,
        log_level="DEBUG",
    )
    for name, value in daemon.settings_env(original).items():
        monkeypatch.setenv(name, value)
    rebuilt = Settings()
    assert rebuilt.model_dump() == original.model_dump()
    assert rebuilt.token is not None
    assert rebuilt.token.get_secret_value() == "tok"


def test_a_stale_pid_file_is_not_a_running_daemon(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.state_dir.mkdir(parents=True)
    settings.pid_file.write_text(f"{os.getpid()}\n")  # a live pid, but nobody holds the lock
    assert daemon.running_pid(settings) is None
    assert daemon.status(settings)["running"] is False
    assert daemon.stop(settings) is None


def test_background_daemon_lifecycle(background: tuple[Settings, int]) -> None:
    settings, pid = background
    assert daemon.running_pid(settings) == pid
    assert settings.pid_file.read_text().strip() == str(pid)
    assert (settings.token_file.stat().st_mode & 0o777) == 0o600

    info = daemon.status(settings)
    assert info["running"] is True
    assert info["pid"] == pid
    assert info["version"] == __version__
    assert info["url"] == f"ws://127.0.0.1:{settings.port}/ws/mcp"

    # The token never reaches the daemon's argv.
    token = settings.token_file.read_text().strip()
    assert token not in " ".join(psutil.Process(pid).cmdline())

    # A second daemon for the same state dir and port is refused, clearly.
    expected = f"cc-executor daemon already running on 127.0.0.1:{settings.port} (pid {pid})"
    with pytest.raises(daemon.DaemonAlreadyRunning) as caught:
        daemon.start_background(settings)
    assert str(caught.value) == expected
    refused = _foreground(settings)
    assert refused.returncode == 1
    assert expected in refused.stderr

    # A client with the default token lookup (the token file) runs a command.
    result = SyncWebSocketClient(
        port=settings.port, token_file=settings.token_file
    ).execute_command("echo Hello, World!")
    assert result["success"] is True, result
    assert result["output_data"] == "Hello, World!\n"

    assert daemon.stop(settings, timeout=SUBPROCESS_TIMEOUT_S) == pid
    assert not settings.pid_file.exists()
    assert not psutil.pid_exists(pid)
    assert daemon.status(settings)["running"] is False


def test_a_port_taken_by_another_program_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", settings.port))
        squatter.listen(1)
        refused = _foreground(settings)
    assert refused.returncode == 1
    assert f"port {settings.port} on 127.0.0.1 is already in use" in refused.stderr
    assert not settings.pid_file.exists()


def test_a_failed_start_reports_the_log(tmp_path: Path) -> None:
    settings = Settings(host="127.0.0.1", port=free_port(), state_dir=tmp_path / "state")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.port))
        squatter.listen(1)
        with pytest.raises(daemon.DaemonStartFailed, match="already in use"):
            daemon.start_background(settings, timeout=SUBPROCESS_TIMEOUT_S)


async def test_sigterm_cancels_running_and_paused_groups(
    background: tuple[Settings, int],
) -> None:
    from cc_executor.client import WebSocketClient

    settings, pid = background
    async with WebSocketClient(port=settings.port, token_file=settings.token_file) as client:
        running = await client.execute("sleep 120 & sleep 120 & wait")
        paused = await client.execute("sleep 120")
        await paused.pause()
        ids = [running.execution_id, paused.execution_id]
        assert all(marked_alive(eid) for eid in ids)
        # graceful shutdown: stop accepting, cancel every group (grace, then kill), exit
        assert daemon.stop(settings, timeout=SUBPROCESS_TIMEOUT_S) == pid
    assert not psutil.pid_exists(pid)
    assert [p for eid in ids for p in marked_alive(eid)] == []


def test_loop_factory_gives_an_asyncio_loop_that_runs_subprocesses() -> None:
    import asyncio
    import sys

    policy = asyncio.get_event_loop_policy()
    previous = getattr(policy, "_watcher", None)
    loop = daemon.loop_factory()
    try:
        assert isinstance(loop, asyncio.SelectorEventLoop)

        async def child() -> int:
            proc = await asyncio.create_subprocess_exec("/bin/sh", "-c", "exit 3")
            return await proc.wait()

        assert loop.run_until_complete(child()) == 3
        if sys.version_info < (3, 12):
            assert type(policy._watcher).__name__ == "PidfdChildWatcher"  # type: ignore[attr-defined]
    finally:
        loop.close()
        if hasattr(policy, "_watcher"):
            policy._watcher = previous
