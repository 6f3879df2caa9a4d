"""Command hooks from hooks.json, run as real process groups (tests/programs/hook_program.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import psutil
import pytest
from tests.polling import poll_until
from tests.processes import alive

from cc_executor.scheduler.hooks import HookContext, HookEvent, HookOutcome, HookRunner
from cc_executor.scheduler.hooks.command_hooks import HOOK_EVENT_ENV, HOOK_NAME_ENV

PROGRAM = Path(__file__).resolve().parents[1] / "programs" / "hook_program.py"
TOKEN = "daemon-secret-token-do-not-leak"
WAIT_S = 15.0
GONE_S = 10.0
PRE = HookEvent.PRE_EXECUTION


def entry(name: str, *args: str, **fields: object) -> dict[str, object]:
    return {
        "name": name,
        "argv": [sys.executable, str(PROGRAM), *args],
        "events": ["pre_execution"],
        **fields,
    }


def runner_with(hooks_dir: Path, entries: list[object], **kwargs: object) -> HookRunner:
    hooks_dir.mkdir(parents=True, exist_ok=True)
    (hooks_dir / "hooks.json").write_text(json.dumps({"hooks": entries}), encoding="utf-8")
    runner = HookRunner(
        hooks_dir=hooks_dir,
        entry_point_group=None,
        base_env={"PATH": "/usr/bin:/bin", "CC_EXECUTOR_TOKEN": TOKEN, "KEEP": "1"},
        **kwargs,  # type: ignore[arg-type]
    )
    runner.load()
    return runner


def ctx(**fields: object) -> HookContext:
    return HookContext(event=PRE, execution_id="exec-42", command="make test", **fields)  # type: ignore[arg-type]


async def run(runner: HookRunner, context: HookContext | None = None) -> HookOutcome:
    async with asyncio.timeout(WAIT_S):
        return await runner.run(PRE, context or ctx())


async def test_context_on_stdin_env_without_token(tmp_path: Path) -> None:
    out = tmp_path / "seen.json"
    runner = runner_with(
        tmp_path / "hooks", [entry("recorder", "record", str(out), env={"EXTRA": "yes"})]
    )
    outcome = await run(runner, ctx(metadata={"k": [1, 2]}))
    assert outcome.proceed, outcome
    assert outcome.runs[0].ok
    assert outcome.runs[0].message == "recorded pre_execution"
    seen = json.loads(out.read_text())
    assert seen["context"]["execution_id"] == "exec-42"
    assert seen["context"]["command"] == "make test"
    assert seen["context"]["metadata"] == {"k": [1, 2]}
    env = seen["env"]
    assert "CC_EXECUTOR_TOKEN" not in env
    assert TOKEN not in json.dumps(env)
    assert env["KEEP"] == "1"
    assert env["EXTRA"] == "yes"
    assert env[HOOK_NAME_ENV] == "recorder"
    assert env[HOOK_EVENT_ENV] == "pre_execution"
    assert seen["cwd"] == str(tmp_path / "hooks")  # the hooks dir, by default


def test_token_in_a_hooks_json_env_is_refused(tmp_path: Path) -> None:
    runner = runner_with(
        tmp_path / "hooks", [entry("sneaky", "record", "x", env={"CC_EXECUTOR_TOKEN": "t"})]
    )
    assert runner.hooks == ()
    assert "never passed to hooks" in runner.errors[0].error


async def test_stdout_json_proceed_false_blocks(tmp_path: Path) -> None:
    runner = runner_with(tmp_path / "hooks", [entry("gate", "block", "not on fridays")])
    outcome = await run(runner)
    assert outcome.proceed is False
    assert outcome.message == "gate: not on fridays"
    assert outcome.runs[0].ok


async def test_non_zero_exit_warns_unless_required(tmp_path: Path) -> None:
    runner = runner_with(
        tmp_path / "hooks",
        [entry("soft", "fail", "3"), entry("hard", "fail", "4", required=True)],
    )
    outcome = await run(runner)
    soft, hard = outcome.runs
    assert (soft.ok, soft.proceed) == (False, True)
    assert soft.error == "exited with 3: something broke"
    assert (hard.ok, hard.proceed) == (False, False)
    assert outcome.proceed is False
    assert outcome.warnings == (
        "hook soft failed (exited with 3: something broke); not required, continuing",
    )


async def test_missing_program_is_a_failure(tmp_path: Path) -> None:
    runner = runner_with(
        tmp_path / "hooks",
        [{"name": "ghost", "argv": ["./no-such-program"], "events": ["pre_execution"]}],
    )
    outcome = await run(runner)
    assert outcome.proceed
    assert "cannot start" in (outcome.runs[0].error or "")
    assert str(tmp_path / "hooks" / "no-such-program") in outcome.runs[0].error


@pytest.mark.parametrize("required", [False, True])
async def test_timeout_kills_the_whole_group(tmp_path: Path, required: bool) -> None:
    pidfile = tmp_path / "pids"
    runner = runner_with(
        tmp_path / "hooks",
        [entry("sleeper", "hang", str(pidfile), timeout_s=2.0, required=required)],
    )
    outcome = await run(runner)
    # The program writes its pids before sleeping; the timeout came after that.
    leader, child = (int(p) for p in pidfile.read_text().split())
    procs = []
    for pid in (leader, child):
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    await poll_until(lambda: not alive(procs), timeout=GONE_S, what="the hook's group to die")
    run_record = outcome.runs[0]
    assert run_record.error == "timed out after 2s"
    assert outcome.proceed is (not required)


def test_bad_entries_are_reported_and_good_ones_load(tmp_path: Path) -> None:
    runner = runner_with(
        tmp_path / "hooks",
        [
            entry("ok", "record", "x"),
            {"name": "noargv", "argv": [], "events": ["pre_execution"]},
            {"name": "badevent", "argv": ["true"], "events": ["whenever"]},
            {"name": "shell", "argv": "echo hi", "events": ["pre_execution"]},
            {"name": "extra", "argv": ["true"], "events": ["pre_task"], "shell": True},
            entry("ok", "record", "y"),
        ],
    )
    assert [h.name for h in runner.hooks] == ["ok"]
    sources = [e.source.rsplit("#", 1)[1] for e in runner.errors]
    assert sources == ["hooks[1]", "hooks[2]", "hooks[3]", "hooks[4]", "hooks[5]"]
    assert "duplicate hook name 'ok'" in runner.errors[-1].error


@pytest.mark.parametrize("content", ["{not json", '["a list"]', '{"hooks": {}}'])
def test_unreadable_hooks_json_is_one_error(tmp_path: Path, content: str) -> None:
    hooks_dir = tmp_path / "hooks"
    hooks_dir.mkdir()
    (hooks_dir / "hooks.json").write_text(content, encoding="utf-8")
    runner = HookRunner(hooks_dir=hooks_dir, entry_point_group=None)
    runner.load()
    assert runner.hooks == ()
    assert len(runner.errors) == 1
    assert runner.errors[0].source == str(hooks_dir / "hooks.json")
