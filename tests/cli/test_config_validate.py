"""`cc-executor config validate`: every invalid value reported (exit 2), then the machine checks."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest
from tests.server.conftest import free_port, run_daemon
from typer.testing import CliRunner, Result

from cc_executor.cli.config_cmd import check_redis
from cc_executor.cli.main import app
from cc_executor.config import Settings

runner = CliRunner()
REDIS_LOCAL = ("127.0.0.1", 6379)  # scripts/test makes sure one answers here
REDIS_PROBE_TIMEOUT_S = 1.0


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, no CC_EXECUTOR_* variables, a fresh state dir and port."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("CC_EXECUTOR_")]:
        monkeypatch.delenv(name)
    state = tmp_path / "state"
    monkeypatch.setenv("CC_EXECUTOR_STATE_DIR", str(state))
    monkeypatch.setenv("CC_EXECUTOR_PORT", str(free_port()))
    return state


def _validate(*args: str) -> Result:
    return runner.invoke(app, ["config", "validate", *args])


def _checks(result: Result) -> dict[str, dict[str, Any]]:
    body = orjson.loads(result.stdout)
    return {c["name"]: c for c in body["checks"]}


def test_valid_configuration_passes(env: Path) -> None:
    result = _validate()
    assert result.exit_code == 0, result.output
    for name in ("shell", "state_dir", "port"):
        assert name in result.output
    assert "configuration is valid" in result.output


def test_every_invalid_value_is_reported_with_field_value_and_message(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC_EXECUTOR_PORT", "eighty")
    monkeypatch.setenv("CC_EXECUTOR_TERMINATE_GRACE_S", "-1")
    monkeypatch.setenv("CC_EXECUTOR_ON_DISCONNECT", "explode")
    result = _validate()
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert "3 invalid setting(s)" in lines[0]
    expected = {
        "port (CC_EXECUTOR_PORT) = 'eighty': ": "valid integer",
        "terminate_grace_s (CC_EXECUTOR_TERMINATE_GRACE_S) = '-1': ": "greater than or equal",
        "on_disconnect (CC_EXECUTOR_ON_DISCONNECT) = 'explode': ": "'keep' or 'cancel'",
    }
    for prefix, message in expected.items():
        assert any(prefix in line and message in line for line in lines), (prefix, lines)


def test_invalid_values_from_a_dotenv_file_as_json(env: Path) -> None:
    Path(".env").write_text("CC_EXECUTOR_MAX_EXECUTIONS=0\n")
    result = _validate("--json")
    assert result.exit_code == 2
    body = orjson.loads(result.stdout)
    assert body["valid"] is False
    assert body["errors"] == [
        {
            "field": "max_executions",
            "value": "0",
            "message": "Input should be greater than or equal to 1",
        }
    ]


def test_missing_shell_fails(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_EXECUTOR_SHELL", "/nonexistent/zsh")
    result = _validate("--json")
    assert result.exit_code == 1
    shell = _checks(result)["shell"]
    assert shell["ok"] is False
    assert "/nonexistent/zsh not found" in shell["detail"]


def test_state_dir_that_is_a_file_fails(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = env.parent / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("CC_EXECUTOR_STATE_DIR", str(blocker))
    result = _validate("--json")
    assert result.exit_code == 1
    assert _checks(result)["state_dir"] == {
        "name": "state_dir",
        "ok": False,
        "detail": f"{blocker} is not a directory",
    }


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_port_used_by_another_program_fails(
    env: Path, monkeypatch: pytest.MonkeyPatch, busy_port: int
) -> None:
    monkeypatch.setenv("CC_EXECUTOR_PORT", str(busy_port))
    result = _validate("--json")
    assert result.exit_code == 1
    port = _checks(result)["port"]
    assert port["ok"] is False
    assert "in use by another program" in port["detail"]


def test_port_used_by_our_daemon_passes(
    env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with run_daemon(tmp_path / "daemon") as daemon:
        monkeypatch.setenv("CC_EXECUTOR_PORT", str(daemon.settings.port))
        result = _validate("--json")
    assert result.exit_code == 0, result.output
    port = _checks(result)["port"]
    assert port["ok"] is True
    assert "served by the cc-executor daemon" in port["detail"]


def _store(url: str, store: str = "redis") -> Settings:
    # A stand-in: Settings itself would read the machine's environment and .env.
    return cast(Settings, SimpleNamespace(store=store, redis_url=url))


def test_redis_check_only_for_the_redis_store() -> None:
    assert check_redis(_store("redis://127.0.0.1:1/0", store="sqlite")) is None


def test_unreachable_redis_fails_without_showing_its_password() -> None:
    port = free_port()  # nothing listens there
    check = check_redis(_store(f"redis://:hunter2@127.0.0.1:{port}/0"))
    assert check is not None
    assert check.ok is False
    assert f"redis://:********@127.0.0.1:{port}/0" in check.detail
    assert "hunter2" not in check.detail


def test_redis_store_without_url_fails() -> None:
    check = check_redis(_store(""))
    assert check is not None
    assert check.ok is False
    assert "redis_url is not set" in check.detail


def _local_redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS_LOCAL, timeout=REDIS_PROBE_TIMEOUT_S) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_reachable_redis_passes() -> None:
    if not _local_redis_answers():
        pytest.skip("no Redis on 127.0.0.1:6379 (scripts/ensure-redis starts one)")
    check = check_redis(_store("redis://127.0.0.1:6379/0"))
    assert check is not None
    assert check.ok, check.detail
    assert "answers PING" in check.detail


def test_redis_store_setting_reaches_the_check(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_EXECUTOR_STORE", "redis")
    monkeypatch.setenv("CC_EXECUTOR_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    result = _validate("--json")
    assert result.exit_code == 1
    assert _checks(result)["redis"]["ok"] is False
