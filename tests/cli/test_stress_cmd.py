"""`cc-executor test stress`: a small load test against a real daemon; the summary and --json."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tests.server.conftest import Daemon, free_port, run_daemon
from typer.testing import CliRunner, Result

from cc_executor.cli.console import EXIT_DAEMON_UNREACHABLE
from cc_executor.cli.main import app
from cc_executor.client.stress import DEFAULT_STRESS_COMMAND, percentile

pytestmark = pytest.mark.e2e

runner = CliRunner()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with run_daemon(tmp_path_factory.mktemp("stress")) as d:
        yield d


def _stress(daemon: Daemon, *args: str) -> Result:
    env: dict[str, str | None] = {n: None for n in os.environ if n.startswith("CC_EXECUTOR_")}
    env["CC_EXECUTOR_STATE_DIR"] = str(daemon.settings.state_dir)
    env["CC_EXECUTOR_PORT"] = str(daemon.settings.port)
    return runner.invoke(app, ["test", "stress", *args], env=env)


def test_json_summary(daemon: Daemon) -> None:
    result = _stress(daemon, "--tasks", "8", "--parallel", "3", "--json")
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    assert body["tasks"] == 8
    assert body["parallel"] == 3
    assert (body["ok"], body["failed"]) == (8, 0)
    assert body["command"] == DEFAULT_STRESS_COMMAND
    assert body["output_bytes"] == 8 * len("cc-executor stress\n")
    assert body["tasks_per_s"] > 0
    assert body["bytes_per_s"] > 0
    for which in ("first_byte_s", "completion_s"):
        p50, p90, p99 = (body[which][k] for k in ("p50", "p90", "p99"))
        assert 0 < p50 <= p90 <= p99
    assert body["first_byte_s"]["p50"] <= body["completion_s"]["p99"]
    assert body["errors"] == []


def test_table_and_progress(daemon: Daemon) -> None:
    result = _stress(daemon, "-n", "4", "-p", "2", "--command", "printf abc")
    assert result.exit_code == 0, result.output
    for row in ("tasks ok / failed", "4 / 0", "first byte p50", "completion p99", "tasks/s"):
        assert row in result.output
    assert "4/4" in result.output  # the progress bar's last state


def test_failing_tasks_are_counted_and_exit_1(daemon: Daemon) -> None:
    result = _stress(daemon, "-n", "3", "-p", "3", "--command", "exit 3", "--json")
    assert result.exit_code == 1
    body = orjson.loads(result.stdout)
    assert (body["ok"], body["failed"]) == (0, 3)
    assert {e["error"] for e in body["errors"]} == {"failed, exit code 3"}
    assert body["completion_s"]["p50"] is None


def test_more_workers_than_tasks(daemon: Daemon) -> None:
    result = _stress(daemon, "-n", "2", "-p", "5", "--json")
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    assert (body["ok"], body["parallel"]) == (2, 2)


def test_unreachable_daemon(tmp_path: Path) -> None:
    env: dict[str, str | None] = {n: None for n in os.environ if n.startswith("CC_EXECUTOR_")}
    env["CC_EXECUTOR_STATE_DIR"] = str(tmp_path / "state")
    env["CC_EXECUTOR_PORT"] = str(free_port())
    result = runner.invoke(app, ["test", "stress", "-n", "1"], env=env)
    assert result.exit_code == EXIT_DAEMON_UNREACHABLE


def test_zero_tasks_is_a_usage_error(daemon: Daemon) -> None:
    assert _stress(daemon, "--tasks", "0").exit_code == 2


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 90) == 90.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
