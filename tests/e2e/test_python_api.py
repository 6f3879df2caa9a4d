"""The Python task API and ``run --claude`` with the real Claude CLI against the fake API.

In-process (embedded supervisor) and through a real daemon on loopback. Needs the CLI from
``scripts/install-claude.sh`` (or ``CC_EXECUTOR_CLAUDE_PATH``); skipped, saying so, when it is
missing. Every run is bounded (``RUN_TIMEOUT_S``); nothing sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.e2e.claude_env import CLAUDE, RECEIPT_LINE, offline_env, requires_claude
from tests.e2e.fake_anthropic import EchoReply, FakeAnthropic
from tests.server.conftest import run_daemon

from cc_executor.api import (
    TaskResult,
    acc_execute,
    acc_execute_list,
    cc_execute,
    verify_execution,
)
from cc_executor.config import Settings

pytestmark = pytest.mark.e2e

CLI_TIMEOUT_S = 120.0


def _check_plain(result: TaskResult, api: FakeAnthropic) -> None:
    assert result.success, result.error
    assert result.text == "2 + 2 = 4"
    assert result.uuid_found is True
    assert result.session_id
    assert result.cost_usd is not None
    assert result.cost_usd > 0
    assert result.num_turns == 1
    (request,) = api.conversation_requests()
    assert result.uuid is not None
    assert result.uuid in json.dumps(request.body)  # the UUID really went to the model
    receipt = json.loads(Path(result.receipt_path or "").read_text())
    assert receipt["uuid_found"] is True
    assert receipt["session_id"] == result.session_id
    assert receipt["transcript_path"]
    assert Path(receipt["transcript_path"]).name == f"{result.session_id}.jsonl"


@requires_claude
def test_in_process_plain_answer_with_receipt(
    api: FakeAnthropic, settings: Settings, options: dict[str, object]
) -> None:
    api.enqueue(EchoReply.uuid("2 + 2 = 4", RECEIPT_LINE))
    result = cc_execute("What is 2+2?", settings=settings, generate_report=True, **options)
    _check_plain(result, api)
    verdict = verify_execution(result.execution_id, settings=settings)
    assert verdict.verified, verdict
    assert {c.name: c.passed for c in verdict.checks} == {
        "events": True,
        "transcript_prompt": True,
        "transcript_answer": True,
    }
    report = Path(result.report_path or "").read_text()
    assert "2 + 2 = 4" in report
    assert "UUID echoed by Claude: yes" in report


@requires_claude
async def test_in_process_json_mode(
    api: FakeAnthropic, settings: Settings, options: dict[str, object]
) -> None:
    api.enqueue(EchoReply.uuid('```json\n{"answer": 4}\n```', RECEIPT_LINE))
    result = await acc_execute("2+2 as JSON", json_mode=True, settings=settings, **options)
    assert result.data == {"answer": 4}
    assert result["answer"] == 4
    assert result.uuid_found
    (request,) = api.conversation_requests()
    assert "single valid JSON value" in json.dumps(request.body)


@requires_claude
async def test_in_process_task_list_uses_fresh_sessions(
    api: FakeAnthropic, settings: Settings, options: dict[str, object]
) -> None:
    api.enqueue(EchoReply.uuid("one", RECEIPT_LINE), EchoReply.uuid("two", RECEIPT_LINE))
    results = await acc_execute_list(
        ["Task 1: say one", "Task 2: say two"], settings=settings, **options
    )
    assert [r.text for r in results] == ["one", "two"]
    assert all(r.uuid_found for r in results)
    assert results[0].session_id != results[1].session_id
    first, second = api.conversation_requests()
    # Fresh context: the second conversation has no earlier turns, only its own task.
    assert "assistant" not in {m["role"] for m in second.messages}
    assert "Task 2" in json.dumps(second.messages)
    assert "Task 1" not in json.dumps(second.messages)
    assert "Task 1" in json.dumps(first.messages)


@requires_claude
async def test_through_a_daemon(
    api: FakeAnthropic, settings: Settings, options: dict[str, object], tmp_path: Path
) -> None:
    with run_daemon(tmp_path / "daemon", claude_path=CLAUDE) as daemon:
        api.enqueue(EchoReply.uuid("2 + 2 = 4", RECEIPT_LINE))
        events: list[str] = []
        stream = await acc_execute(
            "What is 2+2?",
            stream=True,
            server_url=daemon.url,
            token=daemon.token,
            settings=settings,
            progress_callback=lambda e: events.append(e.method),
            **options,
        )
        items = [item async for item in stream]
    result = items[-1]
    assert isinstance(result, TaskResult)
    _check_plain(result, api)
    assert events[0] == "process.started"
    assert events[-1] == "process.completed"
    assert "agent.event" in events
    seqs = [i.seq for i in items[:-1]]  # type: ignore[union-attr]
    assert seqs == list(range(1, len(seqs) + 1))


def _cli_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_EXECUTOR_")}
    return {**env, **extra}


@requires_claude
def test_cli_run_claude_through_the_daemon(
    api: FakeAnthropic,
    work: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = work["home"]
    for key, value in offline_env(api.base_url, home).items():
        monkeypatch.setenv(key, value)  # the daemon hands its environment to Claude
    with run_daemon(tmp_path / "daemon", claude_path=CLAUDE) as daemon:
        api.enqueue(EchoReply.uuid("2 + 2 = 4", RECEIPT_LINE))
        done = subprocess.run(
            [sys.executable, "-m", "cc_executor", "run", "--claude", "What is 2+2?"],
            env=_cli_env(
                {
                    "CC_EXECUTOR_PORT": str(daemon.settings.port),
                    "CC_EXECUTOR_STATE_DIR": str(daemon.settings.state_dir),
                }
            ),
            cwd=str(work["cwd"]),
            capture_output=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert done.stdout.decode().strip() == "2 + 2 = 4"
    assert "completed" in stderr
    assert "receipt ok" in stderr
    assert "$0.0" in stderr  # the cost


@requires_claude
def test_cli_run_claude_local_json_lines(
    api: FakeAnthropic, work: dict[str, Path], tmp_path: Path
) -> None:
    home = work["home"]
    api.enqueue(EchoReply.uuid("2 + 2 = 4", RECEIPT_LINE))
    assert CLAUDE is not None
    done = subprocess.run(
        [sys.executable, "-m", "cc_executor", "run", "--claude", "--local", "--json", "2+2?"],
        env=_cli_env(
            {
                **offline_env(api.base_url, home),
                "CC_EXECUTOR_STATE_DIR": str(tmp_path / "state"),
                "CC_EXECUTOR_CLAUDE_PATH": CLAUDE,
            }
        ),
        cwd=str(work["cwd"]),
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert lines[0]["method"] == "process.started"
    kinds = [line["params"].get("kind") for line in lines if line["method"] == "agent.event"]
    assert "init" in kinds
    assert "result" in kinds
    final = lines[-1]
    assert final["method"] == "result"
    assert final["params"]["text"] == "2 + 2 = 4"
    assert final["params"]["uuid_found"] is True
