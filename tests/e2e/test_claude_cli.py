"""The real Claude Code CLI against the fake Messages API, through the agents adapter.

Needs the CLI from ``scripts/install-claude.sh`` (or ``CC_EXECUTOR_CLAUDE_PATH``); skipped,
saying so, when it is missing. Every run is bounded by ``RUN_TIMEOUT_S`` and talks to
127.0.0.1 only.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.e2e.claude_env import CLAUDE, RUN_TIMEOUT_S, offline_env, requires_claude
from tests.e2e.fake_anthropic import ApiError, FakeAnthropic, TextReply, ToolUseReply

from cc_executor.agents import (
    AgentEvent,
    ClaudeAdapter,
    ClaudeOptions,
    EventKind,
    FailureKind,
    StreamJsonParser,
    classify_failure,
)

pytestmark = pytest.mark.e2e


@dataclass
class Run:
    returncode: int
    events: list[AgentEvent]
    stderr: str
    session_id: str | None

    def of(self, kind: EventKind) -> list[AgentEvent]:
        return [e for e in self.events if e.kind is kind]

    @property
    def result(self) -> AgentEvent:
        (result,) = self.of(EventKind.RESULT)
        return result


def run_claude(
    api: FakeAnthropic, tmp_path: Path, prompt: str, options: ClaudeOptions | None = None
) -> Run:
    assert CLAUDE is not None
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    adapter = ClaudeAdapter(claude_path=CLAUDE)
    options = options or ClaudeOptions(dangerously_skip_permissions=True)
    env = adapter.env(offline_env(api.base_url, home), execution_id="e2e-test")
    done = subprocess.run(
        adapter.argv(prompt, options),
        env=env,
        cwd=work,
        stdin=subprocess.DEVNULL,  # an open, silent stdin can keep `claude -p` waiting
        capture_output=True,
        timeout=RUN_TIMEOUT_S,
        start_new_session=True,
        check=False,
    )
    parser = StreamJsonParser()
    events = parser.feed(done.stdout) + parser.flush()
    return Run(done.returncode, events, done.stderr.decode(errors="replace"), parser.session_id)


@requires_claude
def test_plain_answer(api: FakeAnthropic, tmp_path: Path) -> None:
    api.enqueue(TextReply("2 + 2 = 4"))
    run = run_claude(api, tmp_path, "What is 2+2?")
    assert run.returncode == 0, run.stderr
    (init,) = run.of(EventKind.INIT)
    assert init.data["session_id"]
    assert run.session_id == init.data["session_id"]
    assert [e.data["text"] for e in run.of(EventKind.ASSISTANT_TEXT)] == ["2 + 2 = 4"]
    assert run.result.data["is_error"] is False
    assert run.result.data["result"] == "2 + 2 = 4"
    assert isinstance(run.result.data["total_cost_usd"], float)
    assert run.result.data["total_cost_usd"] > 0  # type: ignore[operator]
    assert run.result.data["num_turns"] == 1
    assert not run.of(EventKind.INVALID_JSON)
    assert classify_failure(run.events, run.stderr) is None
    assert api.exhausted == 0
    assert api.unknown_paths == []
    (request,) = api.conversation_requests()
    assert request.headers["x-api-key"] == "dummy-key-for-fake-api"
    assert request.body["stream"] is True


@requires_claude
def test_bash_tool_turn(api: FakeAnthropic, tmp_path: Path) -> None:
    api.enqueue(
        ToolUseReply.bash("echo hello-from-bash"),
        TextReply("The command printed hello-from-bash."),
    )
    run = run_claude(api, tmp_path, "Run echo hello-from-bash")
    assert run.returncode == 0, run.stderr
    (call,) = run.of(EventKind.TOOL_CALL)
    assert call.data["name"] == "Bash"
    assert call.data["input"]["command"] == "echo hello-from-bash"  # type: ignore[index]
    (result,) = run.of(EventKind.TOOL_RESULT)
    assert result.data["tool_use_id"] == call.data["id"]
    assert result.data["content"] == "hello-from-bash"
    assert result.data["is_error"] is False
    assert run.result.data["is_error"] is False
    assert run.result.data["num_turns"] == 2
    assert run.result.data["total_cost_usd"] > 0  # type: ignore[operator]
    # What the CLI sent back to the API: the tool_result of the Bash call.
    first, second = api.conversation_requests()
    assert first.tool_results() == []
    (sent,) = second.tool_results()
    assert sent["tool_use_id"] == call.data["id"]
    assert "hello-from-bash" in str(sent["content"])


@requires_claude
@pytest.mark.parametrize("prompt", ["--help", "'; echo pwned", "$(id)\n--verbose", "ünï ✓ 日本"])
def test_hostile_prompt_reaches_the_api_verbatim(
    api: FakeAnthropic, tmp_path: Path, prompt: str
) -> None:
    api.enqueue(TextReply("ok"))
    run = run_claude(api, tmp_path, prompt)
    assert run.returncode == 0, run.stderr
    (request,) = api.conversation_requests()
    content = request.messages[0]["content"]
    assert content[-1] == {"type": "text", "text": prompt}


@requires_claude
def test_rate_limit_then_success(api: FakeAnthropic, tmp_path: Path) -> None:
    api.enqueue(ApiError.rate_limited(retry_after_s=1), TextReply("4"))
    run = run_claude(api, tmp_path, "What is 2+2?")
    assert run.returncode == 0, run.stderr
    (retry,) = run.of(EventKind.API_RETRY)
    assert retry.data["error_status"] == 429
    assert run.result.data["is_error"] is False
    assert classify_failure(run.events, run.stderr) is None


@requires_claude
def test_overloaded_is_classified(api: FakeAnthropic, tmp_path: Path) -> None:
    api.enqueue(ApiError.overloaded(), ApiError.overloaded())
    run = run_claude(api, tmp_path, "What is 2+2?")
    assert run.returncode == 1
    assert run.result.data["is_error"] is True
    assert run.result.data["api_error_status"] == 529
    failure = classify_failure(run.events, run.stderr)
    assert failure is not None
    assert failure.kind is FailureKind.OVERLOADED
