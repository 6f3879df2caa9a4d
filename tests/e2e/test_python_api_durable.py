"""Durable task lists and embedded history with the real Claude CLI against the fake API.

Embedded: ``cc_execute`` and ``cc_execute_task_list(durable=True)`` record their executions in
the store of ``settings`` (``cc-executor history`` shows them); a durable list of Claude tasks
returns the same results as the non-durable path (receipts included). Through a real daemon:
the same list over ``task_list.create``, and ``resume`` of the finished list. Skipped, saying
so, without the CLI from ``scripts/install-claude.sh``. Every run is bounded; nothing sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.e2e.claude_env import CLAUDE, RECEIPT_LINE, requires_claude
from tests.e2e.fake_anthropic import EchoReply, FakeAnthropic
from tests.server.conftest import run_daemon

from cc_executor.api import (
    TaskEvent,
    TaskListResults,
    acc_execute,
    acc_execute_list,
    aresume,
    verify_execution,
)
from cc_executor.config import Settings

pytestmark = pytest.mark.e2e

CLI_TIMEOUT_S = 120.0


def _history(settings: Settings) -> list[dict[str, object]]:
    """``cc-executor history list --json`` on the state dir ``settings`` use."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_EXECUTOR_")}
    done = subprocess.run(
        [sys.executable, "-m", "cc_executor", "history", "list", "--json"],
        env={**env, "CC_EXECUTOR_STATE_DIR": str(settings.state_dir)},
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    rows = json.loads(done.stdout)
    assert isinstance(rows, list)
    return rows


def _report_written(path: str | None) -> bool:
    return path is not None and Path(path).is_file()


def _check_claude_results(results: TaskListResults, api: FakeAnthropic) -> None:
    assert [r.state for r in results] == ["completed", "completed", "completed"]
    assert [r.text for r in results] == ["one", "shell\n", "two"]
    claude = [results[0], results[2]]
    assert all(r.success and r.uuid_found for r in claude)
    assert claude[0].session_id != claude[1].session_id  # each task a fresh process
    assert all(r.cost_usd is not None for r in claude)
    for result in claude:
        receipt = json.loads(Path(result.receipt_path or "").read_text())
        assert receipt["uuid_found"] is True
        assert receipt["execution_id"] == result.execution_id
    first, second = api.conversation_requests()
    assert "Task 2" not in json.dumps(first.messages)
    assert "Task 1" not in json.dumps(second.messages)


@requires_claude
async def test_embedded_cc_execute_lands_in_the_durable_history(
    api: FakeAnthropic, settings: Settings, options: dict[str, object]
) -> None:
    api.enqueue(EchoReply.uuid("2 + 2 = 4", RECEIPT_LINE))
    result = await acc_execute("What is 2+2?", settings=settings, **options)
    assert result.success, result.error
    rows = {row["execution_id"]: row for row in _history(settings)}
    row = rows[result.execution_id]
    assert row["state"] == "completed"
    assert row["agent"] == "claude"
    assert (row["result"] or {}).get("session_id") == result.session_id  # type: ignore[union-attr]


@requires_claude
async def test_embedded_durable_list_of_claude_tasks(
    api: FakeAnthropic, settings: Settings, options: dict[str, object]
) -> None:
    api.enqueue(EchoReply.uuid("one", RECEIPT_LINE), EchoReply.uuid("two", RECEIPT_LINE))
    seen: list[TaskEvent] = []
    results = await acc_execute_list(
        ["Task 1: say one", {"command": "echo shell"}, {"task": "Task 2: say two", "retries": 1}],
        durable=True,
        settings=settings,
        progress_callback=seen.append,
        generate_report=True,
        **options,
    )
    assert isinstance(results, TaskListResults)
    assert results.state == "completed"
    _check_claude_results(results, api)
    assert _report_written(results[0].report_path)
    kinds = {e.kind for e in seen if e.kind is not None}
    assert {"init", "result"} <= kinds  # Claude's parsed events reached the callback live
    verdict = verify_execution(results[2].execution_id, settings=settings)
    assert verdict.verified, verdict
    stored = {row["execution_id"] for row in _history(settings)}
    assert {r.execution_id for r in results} <= stored
    again = await aresume(results.list_id, settings=settings)  # finished: results at once
    assert [r.text for r in again] == ["one", "shell\n", "two"]
    assert len(api.conversation_requests()) == 2  # nothing ran again


@requires_claude
async def test_durable_list_through_a_daemon(
    api: FakeAnthropic, settings: Settings, options: dict[str, object], tmp_path: Path
) -> None:
    with run_daemon(tmp_path / "daemon", claude_path=CLAUDE) as daemon:
        api.enqueue(EchoReply.uuid("one", RECEIPT_LINE), EchoReply.uuid("two", RECEIPT_LINE))
        seen: list[str] = []
        results = await acc_execute_list(
            ["Task 1: say one", {"command": "echo shell"}, "Task 2: say two"],
            durable=True,
            server_url=daemon.url,
            token=daemon.token,
            settings=settings,
            progress_callback=lambda e: seen.append(e.method),
            **options,
        )
        assert isinstance(results, TaskListResults)
        _check_claude_results(results, api)
        assert seen[0] == "task.started"
        assert seen[-1] == "task_list.completed"
        assert seen.count("process.completed") == 3
        again = await aresume(
            results.list_id, server_url=daemon.url, token=daemon.token, settings=settings
        )
        assert [r.text for r in again] == ["one", "shell\n", "two"]
        assert [r.session_id for r in again] == [r.session_id for r in results]
    assert not (settings.state_dir / "cc-executor.db").exists()  # all of it on the daemon
