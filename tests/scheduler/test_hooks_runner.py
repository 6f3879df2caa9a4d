"""HookRunner: order, aggregation, recording, notifications, status, disabled, reload, SIGHUP."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from pathlib import Path

import pytest

from cc_executor.config import Settings
from cc_executor.scheduler.hooks import (
    HookContext,
    HookError,
    HookEvent,
    HookResult,
    HookRunner,
    HookSpec,
    hook,
    install_reload_signal,
)
from cc_executor.scheduler.hooks.python_hooks import hooks_from_mapping
from cc_executor.storage.base import HookRunRecord

WAIT_S = 10.0
PRE = HookEvent.PRE_EXECUTION
POST = HookEvent.POST_EXECUTION


def specs(mapping: dict[str, object]) -> list[HookSpec]:
    loaded = hooks_from_mapping(mapping, source="test", prefix="t")
    assert loaded.errors == []
    return loaded.hooks


def runner_of(mapping: dict[str, object], **kwargs: object) -> HookRunner:
    runner = HookRunner(
        hooks_dir=None,
        entry_point_group=None,
        builtins=specs(mapping),
        **kwargs,  # type: ignore[arg-type]
    )
    runner.load()
    return runner


def ctx(event: HookEvent = PRE) -> HookContext:
    return HookContext(event=event, execution_id="e1", list_id="l1", task_index=2)


def ok(ctx: HookContext) -> HookResult:
    return HookResult(message="fine")


def refuse(ctx: HookContext) -> HookResult:
    return HookResult(proceed=False, message="no way")


def broken(ctx: HookContext) -> None:
    raise HookError("disk full")


def crashes(ctx: HookContext) -> None:
    raise ZeroDivisionError("oops")


async def test_hooks_run_in_registration_order_and_only_for_their_event() -> None:
    order: list[str] = []

    def first(ctx: HookContext) -> None:
        order.append("first")

    async def second(ctx: HookContext) -> None:
        order.append("second")

    def post_only(ctx: HookContext) -> None:
        order.append("post")

    runner = runner_of({"pre_execution": [first, second], "post_execution": post_only})
    outcome = await runner.run("pre_execution", ctx())
    assert order == ["first", "second"]
    assert [r.hook for r in outcome.runs] == ["t.first", "t.second"]
    assert all(r.event == "pre_execution" for r in outcome.runs)


async def test_the_event_argument_wins_over_the_context() -> None:
    seen: list[HookEvent] = []
    runner = runner_of({"post_task": lambda c: seen.append(c.event)})
    await runner.run(HookEvent.POST_TASK, ctx(PRE))
    assert seen == [HookEvent.POST_TASK]


async def test_unknown_event_name_raises() -> None:
    runner = runner_of({})
    with pytest.raises(ValueError, match="whenever"):
        await runner.run("whenever", ctx())


async def test_aggregation_failures_warn_blocks_block_required_failures_block() -> None:
    runner = runner_of(
        {"pre_execution": [ok, broken, crashes, refuse, hook(required=True)(broken)]}
    )
    outcome = await runner.run(PRE, ctx())
    assert [(r.hook, r.ok, r.proceed) for r in outcome.runs] == [
        ("t.ok", True, True),
        ("t.broken", False, True),
        ("t.crashes", False, True),
        ("t.refuse", True, False),
        ("t.broken#2", False, False),
    ]
    assert outcome.proceed is False
    assert outcome.blocked_by == ("t.refuse", "t.broken#2")
    assert outcome.message == "t.refuse: no way; t.broken#2: disk full"
    assert outcome.warnings == (
        "hook t.broken failed (disk full); not required, continuing",
        "hook t.crashes failed (ZeroDivisionError: oops); not required, continuing",
    )


async def test_only_warnings_still_proceed() -> None:
    outcome = await runner_of({"pre_execution": [broken, ok]}).run(PRE, ctx())
    assert outcome.proceed is True
    assert outcome.message is None
    assert len(outcome.warnings) == 1


async def test_required_async_hook_timing_out_blocks() -> None:
    never = asyncio.Event()

    @hook(required=True, timeout_s=0.1)
    async def waits(ctx: HookContext) -> None:
        await never.wait()

    async with asyncio.timeout(WAIT_S):
        outcome = await runner_of({"pre_execution": waits}).run(PRE, ctx())
    assert outcome.proceed is False
    assert outcome.runs[0].error == "timed out after 0.1s"


async def test_a_hook_raising_timeout_error_itself_is_not_reported_as_our_timeout() -> None:
    def raises(ctx: HookContext) -> None:
        raise TimeoutError("upstream API")

    outcome = await runner_of({"pre_execution": raises}).run(PRE, ctx())
    assert outcome.runs[0].error == "TimeoutError: upstream API"


async def test_each_run_is_recorded_and_announced() -> None:
    recorded: list[HookRunRecord] = []
    notes: list[tuple[str | None, str, dict[str, object]]] = []

    async def record(run: HookRunRecord) -> None:
        recorded.append(run)

    runner = runner_of(
        {"post_execution": [ok, broken, refuse]},
        record=record,
        notify=lambda eid, method, params: notes.append((eid, method, params)),
    )
    await runner.run(POST, ctx(POST))
    assert [(r.hook, r.ok, r.execution_id, r.list_id) for r in recorded] == [
        ("t.ok", True, "e1", "l1"),
        ("t.broken", False, "e1", "l1"),
        ("t.refuse", True, "e1", "l1"),
    ]
    assert all(r.started_at > 0 and r.duration_s >= 0 for r in recorded)
    assert [(eid, method) for eid, method, _ in notes] == [
        ("e1", "hook.completed"),
        ("e1", "hook.warning"),
        ("e1", "hook.warning"),
    ]
    assert notes[1][2] == {
        "hook": "t.broken",
        "event": "post_execution",
        "kind": "python",
        "required": False,
        "ok": False,
        "proceed": True,
        "message": None,
        "error": "disk full",
        "duration_s": recorded[1].duration_s,
    }


async def test_broken_record_and_notify_callbacks_do_not_fail_the_run() -> None:
    async def record(run: HookRunRecord) -> None:
        raise ConnectionError("store down")

    def notify(eid: str | None, method: str, params: dict[str, object]) -> None:
        raise RuntimeError("sink bug")

    outcome = await runner_of({"pre_execution": ok}, record=record, notify=notify).run(PRE, ctx())
    assert outcome.proceed
    assert outcome.runs[0].ok


async def test_status_lists_hooks_and_newest_runs_first() -> None:
    runner = runner_of({"pre_execution": [ok, refuse]}, last_runs_kept=3, default_timeout_s=7.0)
    await runner.run(PRE, ctx())
    await runner.run(PRE, ctx())
    status = runner.status()
    assert status["enabled"] is True
    assert status["default_timeout"] == 7.0
    assert [h["name"] for h in status["hooks"]] == ["t.ok", "t.refuse"]  # type: ignore[attr-defined]
    runs = status["last_runs"]
    assert [r["hook"] for r in runs] == ["t.refuse", "t.ok", "t.refuse"]  # type: ignore[attr-defined]
    assert runs[0]["proceed"] is False  # type: ignore[index]
    assert runs[0]["required"] is False  # type: ignore[index]
    assert status["errors"] == []


async def test_disabled_runner_runs_nothing_and_loads_no_user_code(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    hooks_dir = tmp_path / "hooks"
    hooks_dir.mkdir()
    (hooks_dir / "side.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nHOOKS = {{}}\n", encoding="utf-8"
    )
    runner = HookRunner(hooks_dir=hooks_dir, enabled=False, entry_point_group=None)
    runner.load()
    assert not marker.exists()
    outcome = await runner.run(PRE, ctx())
    assert outcome.proceed
    assert outcome.runs == ()
    status = runner.status()
    assert status["enabled"] is False
    assert status["configured"] is True  # there is a hook file; it is just not used


def _hook_file(directory: Path, name: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(
        textwrap.dedent(
            """
            def hello(ctx):
                return "hello"

            HOOKS = {"pre_task": hello}
            """
        ),
        encoding="utf-8",
    )


def test_reload_picks_up_new_files_and_duplicate_names_are_reported(tmp_path: Path) -> None:
    hooks_dir = tmp_path / "hooks"
    hooks_dir.mkdir()
    runner = HookRunner(hooks_dir=hooks_dir, entry_point_group=None)
    runner.load()
    assert runner.hooks == ()
    _hook_file(hooks_dir, "greeter")
    (hooks_dir / "hooks.json").write_text(
        '{"hooks": [{"name": "greeter.hello", "argv": ["true"], "events": ["pre_task"]}]}',
        encoding="utf-8",
    )
    runner.reload()
    assert [h.name for h in runner.hooks] == ["greeter.hello"]
    assert runner.hooks[0].kind == "python"
    assert "duplicate hook name 'greeter.hello'" in runner.errors[0].error


async def test_sighup_reloads(tmp_path: Path) -> None:
    hooks_dir = tmp_path / "hooks"
    runner = HookRunner(hooks_dir=hooks_dir, entry_point_group=None)
    runner.load()
    reloaded = asyncio.Event()
    original = runner.reload

    def reload_and_tell() -> None:
        original()
        reloaded.set()

    runner.reload = reload_and_tell  # type: ignore[method-assign]
    _hook_file(hooks_dir, "late")
    uninstall = install_reload_signal(runner)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        async with asyncio.timeout(WAIT_S):
            await reloaded.wait()
    finally:
        uninstall()
    assert [h.name for h in runner.hooks] == ["late.hello"]


async def test_cancelling_the_caller_propagates() -> None:
    started = asyncio.Event()

    async def slow(ctx: HookContext) -> None:
        started.set()
        await asyncio.Event().wait()

    runner = runner_of({"pre_execution": slow})
    task = asyncio.create_task(runner.run(PRE, ctx()))
    async with asyncio.timeout(WAIT_S):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(WAIT_S):
            await task


def test_from_settings(tmp_path: Path) -> None:
    _hook_file(tmp_path / "custom", "mine")
    settings = Settings(
        state_dir=tmp_path / "state",
        hooks_dir=tmp_path / "custom",
        hook_timeout_s=3.5,
    )
    runner = HookRunner.from_settings(settings, base_env={"PATH": "/bin"}, home=str(tmp_path))
    names = [h.name for h in runner.hooks]
    assert names[0] == "builtin.receipt"
    assert "mine.hello" in names
    assert runner.default_timeout_s == 3.5
    default = HookRunner.from_settings(Settings(state_dir=tmp_path / "state"))
    assert default.hooks_dir == tmp_path / "state" / "hooks"
    assert default.status()["configured"] is False  # only the built-in


def test_default_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="default_timeout_s"):
        HookRunner(hooks_dir=None, default_timeout_s=0)
