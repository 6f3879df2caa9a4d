"""Claude Code as an agent of the REAL daemon: ``execute {agent: "claude", prompt}`` over
``/ws/mcp``, the real CLI against the fake Messages API (loopback only), retries within one
execution, usage-limit waits, cancel and pause, and the hang-after-result watchdog (with the
fake ``claude`` of tests/programs, which needs no CLI).

Tests needing the CLI skip, saying why, when ``scripts/install-claude.sh`` was not run.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.e2e.claude_env import CLAUDE, offline_env, requires_claude
from tests.e2e.fake_anthropic import ApiError, FakeAnthropic, TextReply, ToolUseReply
from tests.polling import poll_until
from tests.processes import marked_alive
from tests.server.conftest import Daemon, Peer, Run, run_daemon

pytestmark = pytest.mark.e2e

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
PROCESS_GONE_S = 10.0
# Retries in milliseconds instead of 5..60 s: the same code path, configured small.
FAST = {
    "retry_min_wait_s": 0.05,
    "retry_max_wait_s": 0.2,
    "usage_limit_max_wait_s": 30.0,
    "terminate_grace_s": 2.0,
}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with run_daemon(tmp_path, claude_path=CLAUDE, **FAST) as d:  # type: ignore[arg-type]
        yield d


def agent_params(api: FakeAnthropic, tmp_path: Path, prompt: str, **kw: Any) -> dict[str, Any]:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    env = offline_env(api.base_url, home)
    del env["CLAUDE_CODE_MAX_RETRIES"]  # the daemon sets it: it owns the retries
    return {
        "agent": "claude",
        "prompt": prompt,
        "agent_options": {"dangerously_skip_permissions": True},
        "cwd": str(work),
        "env": env,
        **kw,
    }


def of(run: Run, method: str) -> list[dict[str, Any]]:
    return [e["params"] for e in run.events if e["method"] == method]


def agent_events(run: Run, kind: str) -> list[dict[str, Any]]:
    return [p for p in of(run, "agent.event") if p["kind"] == kind]


def prompt_of(request: Any) -> str:
    """The prompt: the last text block of the first user message."""
    content = request.messages[0]["content"]
    texts = [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return str(texts[-1]) if texts else str(content)


async def execute(peer: Peer, params: dict[str, Any]) -> Run:
    return await peer.run(params)


def assert_one_execution(run: Run) -> None:
    assert run.seqs == list(range(1, len(run.seqs) + 1))
    assert [e["method"] for e in run.events].count("process.completed") == 1
    assert {e["params"].get("execution_id") for e in run.events} == {run.execution_id}


@requires_claude
async def test_plain_answer(daemon: Daemon, api: FakeAnthropic, tmp_path: Path) -> None:
    api.enqueue(TextReply("The answer is 4."))
    async with daemon.session() as peer:
        assert peer.hello["capabilities"]["agents"] == ["claude"]
        run = await execute(peer, agent_params(api, tmp_path, "What is 2+2?"))
        info = await peer.call("status", {"execution_id": run.execution_id})
    assert run.completed["status"] == "completed", run.events
    assert_one_execution(run)
    (init,) = agent_events(run, "init")
    assert init["session_id"]
    assert [e["text"] for e in agent_events(run, "assistant_text")] == ["The answer is 4."]
    (result,) = agent_events(run, "result")
    assert result["total_cost_usd"] > 0
    assert result["is_error"] is False
    assert info["session_id"] == init["session_id"]
    assert info["result"]["text"] == "The answer is 4."
    assert info["result"]["total_cost_usd"] == result["total_cost_usd"]
    assert info["agent"] == "claude"
    assert info["attempt"] == 1
    assert b'"type":"result"' in run.output()  # process.output carries the raw stream too
    assert prompt_of(api.conversation_requests()[0]) == "What is 2+2?"


@requires_claude
async def test_tool_turn_runs_bash(daemon: Daemon, api: FakeAnthropic, tmp_path: Path) -> None:
    api.enqueue(ToolUseReply.bash("echo tool-ran-$((6 * 7))"), TextReply("done"))
    async with daemon.session() as peer:
        run = await execute(peer, agent_params(api, tmp_path, "run it"))
    assert run.completed["status"] == "completed"
    (call,) = agent_events(run, "tool_call")
    assert call["name"] == "Bash"
    (tool_result,) = agent_events(run, "tool_result")
    assert "tool-ran-42" in tool_result["content"]
    assert tool_result["is_error"] is False
    sent = api.conversation_requests()[1].tool_results()
    assert "tool-ran-42" in json.dumps(sent)


@requires_claude
@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [(ApiError.rate_limited(), "rate_limit", 429), (ApiError.overloaded(), "overloaded", 529)],
    ids=["429", "529"],
)
async def test_api_error_then_success_is_one_execution(  # noqa: PLR0917 (parametrized)
    daemon: Daemon, api: FakeAnthropic, tmp_path: Path, error: ApiError, kind: str, status: int
) -> None:
    api.enqueue(error, TextReply("recovered"))
    async with daemon.session() as peer:
        run = await execute(peer, agent_params(api, tmp_path, "try"))
        info = await peer.call("status", {"execution_id": run.execution_id})
    assert run.completed["status"] == "completed", run.events
    assert_one_execution(run)
    (notice,) = of(run, "error.rate_limit_exceeded")
    assert notice["kind"] == kind
    assert notice["api_error_status"] == status
    assert notice["retry"] is True
    assert 0.05 <= notice["wait_s"] <= 0.2
    assert [p["attempt"] for p in of(run, "process.started")] == [1, 2]
    assert info["attempt"] == 2
    assert info["result"]["text"] == "recovered"
    assert len(api.conversation_requests()) == 2  # the CLI did not retry on its own


@requires_claude
async def test_usage_limit_waits_then_succeeds(
    daemon: Daemon, api: FakeAnthropic, tmp_path: Path
) -> None:
    resets = int(time.time()) + 3
    api.enqueue(
        ApiError(429, "rate_limit_error", f"Claude AI usage limit reached|{resets}"),
        TextReply("after the reset"),
    )
    async with daemon.session() as peer:
        started = await peer.call("execute", agent_params(api, tmp_path, "long job"))
        eid = started["execution_id"]
        run = Run(eid)
        waiting = await peer.wait_for(eid, "task.waiting_for_limit", run)
        info = await peer.call("status", {"execution_id": eid})
        assert info["state"] == "waiting_for_limit"
        paused = await peer.request("control", {"type": "PAUSE", "execution_id": eid})
        assert paused["error"]["code"] == -32004
        await peer.wait_for(eid, "process.completed", run)
    assert waiting["params"]["waiting"] is True
    assert waiting["params"]["resets_at_epoch"] == resets
    assert run.completed["status"] == "completed"
    assert time.time() >= resets
    assert [p["attempt"] for p in of(run, "process.started")] == [1, 2]
    assert_one_execution(run)


@requires_claude
async def test_output_token_limit_retries_with_concise_prompt(
    daemon: Daemon, api: FakeAnthropic, tmp_path: Path
) -> None:
    # The CLI recovers from max_tokens three times on its own, then gives up with the error.
    api.enqueue(*[TextReply("part", stop_reason="max_tokens")] * 4, TextReply("short answer"))
    async with daemon.session() as peer:
        run = await execute(peer, agent_params(api, tmp_path, "write a novel"))
    assert run.completed["status"] == "completed", run.events
    (notice,) = of(run, "error.token_limit_exceeded")
    assert notice["kind"] == "output_token_limit"
    assert notice["retry"] is True
    retry_prompt = prompt_of(api.conversation_requests()[-1])
    assert retry_prompt.startswith("write a novel\n\n")
    assert "more concisely" in retry_prompt
    assert notice["prompt"] == retry_prompt


@requires_claude
async def test_bash_output_over_8_mb(daemon: Daemon, api: FakeAnthropic, tmp_path: Path) -> None:
    size = 9_000_000
    api.enqueue(
        ToolUseReply.bash(f"head -c {size} /dev/zero | tr '\\0' x; echo; echo END"),
        TextReply("done"),
    )
    async with daemon.session() as peer:
        run = await execute(peer, agent_params(api, tmp_path, "big output"))
    assert run.completed["status"] == "completed"
    # Every byte the CLI wrote arrived: stdout is exactly the stream-json lines of the events.
    lines = run.output().decode().splitlines()
    assert [json.loads(line)["type"] for line in lines][-1] == "result"
    raws = [p["raw"] for p in of(run, "agent.event")]
    assert all(raw in lines for raw in raws)
    # The CLI itself keeps big tool output out of the conversation: it saves it to a file and
    # sends a 2 KB preview. The user relies on the file holding all of it.
    (tool_result,) = agent_events(run, "tool_result")
    match = re.search(r"saved to: (\S+)", tool_result["content"])
    assert match, tool_result["content"][:500]
    saved = Path(match.group(1)).read_bytes()  # noqa: ASYNC240 (the run is over)
    assert saved[:size] == b"x" * size


@requires_claude
async def test_cancel_during_bash_tool_leaves_no_process(
    daemon: Daemon, api: FakeAnthropic, tmp_path: Path
) -> None:
    api.enqueue(ToolUseReply.bash("sleep 300"), TextReply("never"))
    async with daemon.session() as peer:
        started = await peer.call("execute", agent_params(api, tmp_path, "sleep"))
        eid = started["execution_id"]
        run = Run(eid)
        await peer.wait_for(eid, "agent.event", run)

        def sleeping() -> bool:
            return any("sleep" in " ".join(p.cmdline()) for p in marked_alive(eid))

        await poll_until(sleeping, timeout=30, what="the Bash tool's sleep")
        await peer.call("control", {"type": "CANCEL", "execution_id": eid})
        await peer.wait_for(eid, "process.completed", run)
    assert run.completed["status"] == "canceled"
    await poll_until(
        lambda: not marked_alive(eid), timeout=PROCESS_GONE_S, what="no marked process"
    )


@requires_claude
async def test_pause_and_resume_mid_stream(
    daemon: Daemon, api: FakeAnthropic, tmp_path: Path
) -> None:
    api.enqueue(ToolUseReply.bash("sleep 1; echo woke-up"), TextReply("done"))
    async with daemon.session() as peer:
        started = await peer.call("execute", agent_params(api, tmp_path, "nap"))
        eid = started["execution_id"]
        run = Run(eid)
        while True:
            event = await peer.wait_for(eid, "agent.event", run)
            if event["params"]["kind"] == "tool_call":
                break
        await peer.call("control", {"type": "PAUSE", "execution_id": eid})
        leader = psutil.Process(started["pid"])
        await poll_until(
            lambda: leader.status() == psutil.STATUS_STOPPED, timeout=10, what="stopped"
        )
        assert (await peer.call("status", {"execution_id": eid}))["state"] == "paused"
        await peer.call("control", {"type": "RESUME", "execution_id": eid})
        await peer.wait_for(eid, "process.completed", run)
    methods = [e["method"] for e in run.events]
    assert methods.index("process.paused") < methods.index("process.resumed")
    assert run.completed["status"] == "completed"
    (tool_result,) = agent_events(run, "tool_result")
    assert "woke-up" in tool_result["content"]


async def test_hang_after_result_completes_after_grace(tmp_path: Path) -> None:
    """The fake ``claude`` prints its result and hangs; the daemon ends it and reports success."""
    fake = tmp_path / "bin" / "claude"
    fake.parent.mkdir()
    (PROGRAMS / "fake_claude.py").chmod(0o755)
    fake.symlink_to(PROGRAMS / "fake_claude.py")
    with run_daemon(tmp_path, claude_path=str(fake), claude_result_grace_s=0.5, **FAST) as d:  # type: ignore[arg-type]
        async with d.session() as peer:
            began = time.monotonic()
            run = await peer.run(
                {"agent": "claude", "prompt": "hi", "env": {"FAKE_CLAUDE_SCRIPT": "hang"}}
            )
            elapsed = time.monotonic() - began
            info = await peer.call("status", {"execution_id": run.execution_id})
    assert run.completed["status"] == "completed"
    assert run.completed["reason"] == "result_grace"
    assert info["result"]["text"] == "the answer"
    assert info["session_id"]
    assert 0.5 <= elapsed < 10
    assert not marked_alive(run.execution_id)


async def test_unknown_agent_and_missing_cli(tmp_path: Path) -> None:
    with run_daemon(tmp_path, claude_path=str(tmp_path / "nowhere" / "claude")) as d:
        async with d.session() as peer:
            unknown = await peer.request("execute", {"agent": "gpt", "prompt": "hi"})
            missing = await peer.request("execute", {"agent": "claude", "prompt": "hi"})
    assert unknown["error"]["code"] == -32602
    assert "claude" in unknown["error"]["message"]
    assert unknown["error"]["data"]["known_agents"] == ["claude"]
    assert "CC_EXECUTOR_CLAUDE_PATH" in missing["error"]["message"]
