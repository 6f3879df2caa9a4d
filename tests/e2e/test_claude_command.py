"""A ``command`` whose program is ``claude`` on the REAL daemon, with the real CLI against the
fake Messages API (loopback only): the simple form runs as an argv with stream-json added, so it
gets ``agent.event``s, ``status`` session/result and retries within one execution; the CLI's
``run "claude -p ..."`` shows the live view. Skipped, saying why, without the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.claude_env import CLAUDE, offline_env, requires_claude
from tests.e2e.fake_anthropic import ApiError, FakeAnthropic, TextReply
from tests.server.conftest import Daemon, Run, run_daemon

from cc_executor.agents.shell import parse_claude_command

pytestmark = pytest.mark.e2e

CLI_TIMEOUT_S = 120.0  # one `cc-executor run` of a Claude answer against the local fake
FAST = {"retry_min_wait_s": 0.05, "retry_max_wait_s": 0.2, "terminate_grace_s": 2.0}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with run_daemon(tmp_path / "daemon", claude_path=CLAUDE, **FAST) as d:  # type: ignore[arg-type]
        yield d


def command_params(api: FakeAnthropic, tmp_path: Path, command: str) -> dict[str, Any]:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    env = offline_env(api.base_url, home)
    del env["CLAUDE_CODE_MAX_RETRIES"]  # the daemon sets it: it owns the retries
    return {"command": command, "cwd": str(work), "env": env}


def of(run: Run, method: str) -> list[dict[str, Any]]:
    return [e["params"] for e in run.events if e["method"] == method]


def kinds(run: Run) -> list[str]:
    return [p["kind"] for p in of(run, "agent.event")]


def prompt_of(request: Any) -> str:
    content = request.messages[0]["content"]
    texts = [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return str(texts[-1]) if texts else str(content)


@requires_claude
async def test_claude_command_gets_agent_events_and_session(
    daemon: Daemon, api: FakeAnthropic, tmp_path: Path
) -> None:
    api.enqueue(TextReply("The answer is 4."))
    command = "claude -p 'What is 2+2?'"
    async with daemon.session() as peer:
        run = await peer.run(command_params(api, tmp_path, command))
        info = await peer.call("status", {"execution_id": run.execution_id})
    assert run.completed["status"] == "completed", run.events
    assert kinds(run)[0] == "init"
    assert kinds(run)[-1] == "result"
    (init,) = [p for p in of(run, "agent.event") if p["kind"] == "init"]
    assert info["session_id"] == init["session_id"]
    assert info["result"]["text"] == "The answer is 4."
    assert info["agent"] == "claude"
    assert info["command"] == command  # shown as the user wrote it
    (started,) = of(run, "process.started")
    assert started["command"] == command
    assert prompt_of(api.conversation_requests()[0]) == "What is 2+2?"


@requires_claude
async def test_claude_command_rate_limit_then_success_is_one_execution(
    daemon: Daemon, api: FakeAnthropic, tmp_path: Path
) -> None:
    api.enqueue(ApiError.rate_limited(), TextReply("recovered"))
    async with daemon.session() as peer:
        run = await peer.run(command_params(api, tmp_path, "claude -p 'try it' --model sonnet"))
        info = await peer.call("status", {"execution_id": run.execution_id})
    assert run.completed["status"] == "completed", run.events
    assert [e["method"] for e in run.events].count("process.completed") == 1
    assert run.seqs == list(range(1, len(run.seqs) + 1))
    (notice,) = of(run, "error.rate_limit_exceeded")
    assert notice["api_error_status"] == 429
    assert notice["retry"] is True
    assert [p["attempt"] for p in of(run, "process.started")] == [1, 2]
    assert info["attempt"] == 2
    assert info["result"]["text"] == "recovered"
    assert len(api.conversation_requests()) == 2  # the CLI did not retry on its own


@requires_claude
@pytest.mark.parametrize(
    "command",
    [
        "claude -p 'rm -rf / ; echo pwned' --model sonnet",
        "claude --model sonnet -p -- '--help'",
        "claude -p --debug api 'after a debug filter'",
        "claude -p --allowedTools Bash Read -- 'after variadic tools'",
        "claude -p 'multi\nline ünï ✓'",
    ],
)
async def test_prompt_word_is_what_the_cli_sends(
    daemon: Daemon, api: FakeAnthropic, tmp_path: Path, command: str
) -> None:
    """The word we would amend on a token-limit retry is the one the CLI reads as the prompt."""
    parsed = parse_claude_command(command)
    assert parsed is not None
    assert parsed.prompt is not None
    api.enqueue(TextReply("ok"))
    async with daemon.session() as peer:
        run = await peer.run(command_params(api, tmp_path, command))
    assert run.completed["status"] == "completed", run.events
    assert prompt_of(api.conversation_requests()[0]) == parsed.prompt


@requires_claude
async def test_text_output_format_is_kept(
    daemon: Daemon, api: FakeAnthropic, tmp_path: Path
) -> None:
    api.enqueue(TextReply("plain four"))
    async with daemon.session() as peer:
        run = await peer.run(command_params(api, tmp_path, "claude -p hi --output-format text"))
    assert run.completed["status"] == "completed"
    assert of(run, "agent.event") == []
    assert run.output() == b"plain four\n"


def _cli(daemon: Daemon, cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_EXECUTOR_")}
    env |= {
        "CC_EXECUTOR_PORT": str(daemon.settings.port),
        "CC_EXECUTOR_STATE_DIR": str(daemon.settings.state_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "cc_executor", "run", *args],
        env=env,
        cwd=str(cwd),
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


@pytest.fixture
def offline_daemon(
    api: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Daemon]:
    """A daemon whose own environment is the offline one: it hands it to Claude."""
    home = tmp_path / "home"
    home.mkdir()
    for key, value in offline_env(api.base_url, home).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CLAUDE_CODE_MAX_RETRIES")
    with run_daemon(tmp_path / "daemon", claude_path=CLAUDE, **FAST) as d:  # type: ignore[arg-type]
        yield d


@requires_claude
def test_cli_run_claude_command_shows_the_live_view(
    offline_daemon: Daemon, api: FakeAnthropic, tmp_path: Path
) -> None:
    api.enqueue(ApiError.rate_limited(), TextReply("2 + 2 = 4"))
    done = _cli(offline_daemon, tmp_path, "claude -p 'What is 2+2?'")
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert done.stdout.decode() == "2 + 2 = 4\n"  # the answer, not the stream-json lines
    assert "completed" in stderr
    assert "session " in stderr
    assert "$0.0" in stderr  # the cost
    assert "rate_limit_exceeded" in stderr  # the retry was shown


@requires_claude
def test_cli_run_claude_command_json_lines(
    offline_daemon: Daemon, api: FakeAnthropic, tmp_path: Path
) -> None:
    api.enqueue(TextReply("2 + 2 = 4"))
    done = _cli(offline_daemon, tmp_path, "--json", "claude -p 'What is 2+2?'")
    assert done.returncode == 0, done.stderr.decode()
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    kinds = [line["params"].get("kind") for line in lines if line["method"] == "agent.event"]
    assert kinds[0] == "init"
    assert kinds[-1] == "result"
    assert lines[-1]["method"] == "process.completed"


@requires_claude
def test_cli_run_claude_text_command_prints_raw(
    offline_daemon: Daemon, api: FakeAnthropic, tmp_path: Path
) -> None:
    api.enqueue(TextReply("plain four"))
    done = _cli(offline_daemon, tmp_path, "claude -p hi --output-format text")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"plain four\n"
