"""Claude runs through a real Supervisor with the fake ``claude``: parsing, the result-grace
watchdog, retries within one execution, usage-limit waits, cancel and pause while waiting."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from tests.supervisor.probes import (
    eventually,
    finished,
    marked_alive,
    messages,
    methods,
    output,
)

from cc_executor.agents import ClaudeOptions
from cc_executor.errors import InvalidTransition
from cc_executor.scheduler import ClaudeRunConfig, claude_command_spec, claude_spec
from cc_executor.scheduler.agent_run import AGENT_EVENT_RAW_MAX_CHARS, RESULT_GRACE_REASON
from cc_executor.supervisor import Execution, ExecutionState, Supervisor

MiB = 1024 * 1024


def script_env(tmp_path: Path, script: str) -> dict[str, str]:
    return {"FAKE_CLAUDE_SCRIPT": script, "FAKE_CLAUDE_STATE": str(tmp_path / "state.jsonl")}


def runs(tmp_path: Path) -> list[list[str]]:
    """The argv (without the program) of every attempt the fake saw."""
    lines = (tmp_path / "state.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def of(execution: Execution, method: str) -> list[dict[str, Any]]:
    return [m["params"] for m in messages(execution) if m["method"] == method]


def kinds(execution: Execution) -> list[str]:
    return [p["kind"] for p in of(execution, "agent.event")]


async def start(
    sup: Supervisor, tmp_path: Path, config: ClaudeRunConfig, script: str, **kw: Any
) -> Execution:
    spec = claude_spec(
        "What is 2+2?", ClaudeOptions(), config, env=script_env(tmp_path, script), **kw
    )
    return await sup.execute(spec)


async def test_plain_answer_events_session_and_result(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    execution = await start(supervisor, tmp_path, claude_config, "ok")
    done = await finished(execution)
    assert done["status"] == "completed"
    assert done["exit_code"] == 0
    assert kinds(execution) == ["init", "assistant_text", "result"]
    seqs = [m["params"]["seq"] for m in messages(execution)]
    assert seqs == list(range(1, len(seqs) + 1))
    init, _, result = of(execution, "agent.event")
    assert init["session_id"] == "00000000-0000-4000-8000-00000000fa4e"
    assert json.loads(result["raw"])["type"] == "result"
    info = execution.info()
    assert info["session_id"] == init["session_id"]
    assert info["agent"] == "claude"
    assert info["attempt"] == 1
    assert info["result"] == {
        "text": "the answer",
        "subtype": "success",
        "is_error": False,
        "total_cost_usd": 0.0123,
        "usage": {"input_tokens": 10, "output_tokens": 5},
        "num_turns": 1,
        "duration_ms": 12,
        "terminal_reason": "completed",
        "api_error_status": None,
    }
    # process.output still carries the exact stdout (orchestrators of the old tool read it)
    assert output(execution).count(b"\n") == 3
    argv = runs(tmp_path)[0]
    assert argv[-2:] == ["--", "What is 2+2?"]
    assert argv[:4] == ["-p", "--output-format", "stream-json", "--verbose"]


async def test_child_env_is_cleaned_and_cli_retries_are_ours(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    sup = Supervisor(
        shell="/bin/sh",
        base_env={**os.environ, "CLAUDECODE": "1", "CC_EXECUTOR_TOKEN": "secret"},
    )
    async with sup:
        spec = claude_spec(
            "env?",
            None,
            claude_config,
            env={**script_env(tmp_path, "hang"), "CLAUDE_CODE_ENTRYPOINT": "x"},
        )
        execution = await sup.execute(spec)
        import psutil

        def leader_env() -> dict[str, str]:
            try:
                return psutil.Process(execution.pid).environ()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                return {}

        # The leader's environ reads empty while it is in the middle of exec (the fake's
        # shebang goes through `env`): keep the first complete read.
        seen: list[dict[str, str]] = []

        def read_env() -> bool:
            env = leader_env()
            if env.get("CC_EXECUTOR_EXECUTION_ID") == execution.id:
                seen.append(env)
            return bool(seen)

        await eventually(read_env, "the fake to run")
        env = seen[0]
        assert "CLAUDECODE" not in env
        assert "CLAUDE_CODE_ENTRYPOINT" not in env
        assert "CC_EXECUTOR_TOKEN" not in env
        assert env["CC_EXECUTOR_EXECUTION_ID"] == execution.id
        assert env["CLAUDE_CODE_MAX_RETRIES"] == "0"
        await sup.cancel(execution.id)
        await finished(execution)


async def test_hang_after_result_completes_after_grace(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    began = time.monotonic()
    execution = await start(supervisor, tmp_path, claude_config, "hang")
    done = await finished(execution)
    elapsed = time.monotonic() - began
    assert done["status"] == "completed"
    assert done["reason"] == RESULT_GRACE_REASON
    assert done["signal"] == "SIGTERM"
    assert execution.info()["result"]["text"] == "the answer"  # type: ignore[index]
    assert 0.3 <= elapsed < 5
    assert marked_alive(execution.id) == []


async def test_rate_limit_then_success_is_one_execution(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    execution = await start(supervisor, tmp_path, claude_config, "429,529,ok")
    done = await finished(execution)
    assert done["status"] == "completed"
    started = of(execution, "process.started")
    assert [s["attempt"] for s in started] == [1, 2, 3]
    errors = of(execution, "error.rate_limit_exceeded")
    assert [e["kind"] for e in errors] == ["rate_limit", "overloaded"]
    assert [e["api_error_status"] for e in errors] == [429, 529]
    assert all(e["retry"] and 0.05 <= e["wait_s"] <= 0.2 for e in errors)
    assert methods(execution).count("process.completed") == 1
    assert execution.info()["attempt"] == 3
    assert len(runs(tmp_path)) == 3


async def test_rate_limit_gives_up_after_attempts(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    execution = await start(supervisor, tmp_path, claude_config, "429")
    done = await finished(execution)
    assert done["status"] == "failed"
    assert done["reason"] == "rate_limit"
    errors = of(execution, "error.rate_limit_exceeded")
    assert [e["retry"] for e in errors] == [True, True, False]
    assert execution.info()["failure"]["kind"] == "rate_limit"  # type: ignore[index]


async def test_output_token_limit_retries_with_concise_prompt(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    execution = await start(supervisor, tmp_path, claude_config, "maxtok,ok")
    done = await finished(execution)
    assert done["status"] == "completed"
    (event,) = of(execution, "error.token_limit_exceeded")
    assert event["kind"] == "output_token_limit"
    assert event["retry"] is True
    first, second = runs(tmp_path)
    assert first[-1] == "What is 2+2?"
    assert second[-1].startswith("What is 2+2?\n\n")
    assert "more concisely" in second[-1]
    assert event["prompt"] == second[-1]


async def test_output_token_limit_retries_are_bounded(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    execution = await start(supervisor, tmp_path, claude_config, "maxtok")
    done = await finished(execution)
    assert done["status"] == "failed"
    assert done["reason"] == "output_token_limit"
    assert [e["retry"] for e in of(execution, "error.token_limit_exceeded")] == [True, True, False]
    assert len(runs(tmp_path)) == 3


async def test_usage_limit_waits_then_runs_again(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    execution = await start(supervisor, tmp_path, claude_config, "usage:1,ok")
    await eventually(
        lambda: execution.state is ExecutionState.WAITING_FOR_LIMIT, "waiting_for_limit"
    )
    with pytest.raises(InvalidTransition):
        await supervisor.pause(execution.id)
    with pytest.raises(InvalidTransition):
        await supervisor.resume(execution.id)
    assert execution.info()["state"] == "waiting_for_limit"
    done = await finished(execution)
    assert done["status"] == "completed"
    (waiting,) = of(execution, "task.waiting_for_limit")
    assert waiting["waiting"] is True
    assert 0 < waiting["wait_s"] <= 3
    assert waiting["resets_at"] is not None
    assert [s["attempt"] for s in of(execution, "process.started")] == [1, 2]


async def test_cancel_while_waiting_ends_at_once(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    execution = await start(supervisor, tmp_path, claude_config, "usage:20,ok")
    await eventually(
        lambda: execution.state is ExecutionState.WAITING_FOR_LIMIT, "waiting_for_limit"
    )
    began = time.monotonic()
    await supervisor.cancel(execution.id)
    done = await finished(execution, within=2.0)
    assert time.monotonic() - began < 1.0
    assert done["status"] == "canceled"
    assert methods(execution)[-2:] == ["process.canceled", "process.completed"]
    assert len(runs(tmp_path)) == 1


async def test_usage_limit_beyond_the_cap_fails(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    execution = await start(supervisor, tmp_path, claude_config, "usage:3600")
    done = await finished(execution)
    assert done["status"] == "failed"
    assert done["reason"] == "usage_limit"
    (waiting,) = of(execution, "task.waiting_for_limit")
    assert waiting["waiting"] is False


async def test_huge_tool_result_line_arrives_intact(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    size = 9 * MiB
    execution = await start(supervisor, tmp_path, claude_config, f"big:{size}")
    done = await finished(execution, within=60)
    assert done["status"] == "completed"
    lines = output(execution).splitlines()
    tool_line = json.loads(lines[2])
    assert tool_line["message"]["content"][0]["content"] == "x" * size
    (tool_result,) = [p for p in of(execution, "agent.event") if p["kind"] == "tool_result"]
    assert tool_result["truncated"] is True
    assert tool_result["raw_truncated"] is True
    assert len(tool_result["raw"]) == AGENT_EVENT_RAW_MAX_CHARS
    assert tool_result["raw_chars"] == len(lines[2])


async def test_idle_watchdog(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    execution = await start(supervisor, tmp_path, claude_config, "silent", idle_timeout=0.3)
    done = await finished(execution)
    assert done["status"] == "timeout"
    assert done["reason"] == "idle_timeout"


async def test_crash_without_result_fails(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    execution = await start(supervisor, tmp_path, claude_config, "crash")
    done = await finished(execution)
    assert done["status"] == "failed"
    assert done["exit_code"] == 3
    assert execution.info()["failure"]["kind"] == "other"  # type: ignore[index]


async def test_claude_command_with_stream_json_is_kept_and_retried(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig, fake_claude: Path
) -> None:
    command = f"{fake_claude} -p --output-format stream-json --verbose 'hi there'"
    spec = claude_command_spec(
        command, claude_config, shell="/bin/sh", env=script_env(tmp_path, "429,ok")
    )
    execution = await supervisor.execute(spec)
    done = await finished(execution)
    assert done["status"] == "completed"
    assert execution.info()["command"] == command
    assert len(of(execution, "error.rate_limit_exceeded")) == 1
    # The user's words exactly: nothing to add, no shell between.
    assert runs(tmp_path) == [["-p", "--output-format", "stream-json", "--verbose", "hi there"]] * 2


async def test_simple_claude_command_gets_stream_json_events_and_retries(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    command = "GREETING='a b' claude -p 'What is 2+2?' --model sonnet"
    spec = claude_command_spec(
        command, claude_config, shell="/bin/sh", env=script_env(tmp_path, "429,ok")
    )
    execution = await supervisor.execute(spec)
    done = await finished(execution)
    assert done["status"] == "completed"
    assert spec.env["GREETING"] == "a b"
    assert execution.info()["command"] == command
    assert execution.info()["session_id"] == "00000000-0000-4000-8000-00000000fa4e"
    assert [p["attempt"] for p in of(execution, "process.started")] == [1, 2]
    assert kinds(execution)[-3:] == ["init", "assistant_text", "result"]
    expected = ["--output-format", "stream-json", "--verbose", "-p", "What is 2+2?"]
    assert runs(tmp_path) == [[*expected, "--model", "sonnet"]] * 2


async def test_simple_claude_command_token_limit_amends_its_prompt_word(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    spec = claude_command_spec(
        "claude -p 'write a novel' --model sonnet",
        claude_config,
        shell="/bin/sh",
        env=script_env(tmp_path, "maxtok,ok"),
    )
    execution = await supervisor.execute(spec)
    done = await finished(execution)
    assert done["status"] == "completed"
    (notice,) = of(execution, "error.token_limit_exceeded")
    assert notice["retry"] is True
    first, second = runs(tmp_path)
    assert first[4] == "write a novel"
    assert second[4].startswith("write a novel\n\n")
    assert "more concisely" in second[4]
    assert second[4] == notice["prompt"]
    assert second[5:] == ["--model", "sonnet"]  # the user's order is kept


async def test_claude_command_with_unknown_prompt_gets_no_token_retry(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    spec = claude_command_spec(
        "claude -p --some-new-option x 'write a novel'",
        claude_config,
        shell="/bin/sh",
        env=script_env(tmp_path, "maxtok,ok"),
    )
    execution = await supervisor.execute(spec)
    done = await finished(execution)
    assert done["status"] == "failed"
    (notice,) = of(execution, "error.token_limit_exceeded")
    assert notice["retry"] is False
    assert len(runs(tmp_path)) == 1


async def test_claude_command_with_text_output_gives_no_events(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig
) -> None:
    spec = claude_command_spec(
        "claude -p hi --output-format text",
        claude_config,
        shell="/bin/sh",
        env=script_env(tmp_path, "text"),
    )
    execution = await supervisor.execute(spec)
    done = await finished(execution)
    assert done["status"] == "completed"
    assert of(execution, "agent.event") == []
    assert output(execution) == b"a plain answer\n"
    assert runs(tmp_path) == [["-p", "hi", "--output-format", "text"]]


async def test_shell_claude_command_runs_unchanged(
    supervisor: Supervisor, tmp_path: Path, claude_config: ClaudeRunConfig, fake_claude: Path
) -> None:
    command = f"{fake_claude} -p hi | cat"
    spec = claude_command_spec(
        command, claude_config, shell="/bin/sh", env=script_env(tmp_path, "text")
    )
    assert spec.argv == ["/bin/sh", "-c", command]
    execution = await supervisor.execute(spec)
    done = await finished(execution)
    assert done["status"] == "completed"
    assert of(execution, "agent.event") == []
    assert output(execution) == b"a plain answer\n"
    assert runs(tmp_path) == [["-p", "hi"]]
