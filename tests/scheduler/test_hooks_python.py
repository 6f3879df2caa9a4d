"""Python hooks: discovery from a hooks dir and from entry points, sync/async calling, options."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from cc_executor.scheduler.hooks import (
    ENTRY_POINT_GROUP,
    HookContext,
    HookEvent,
    HookResult,
    HookRunner,
    hook,
)
from cc_executor.scheduler.hooks.model import coerce_result
from cc_executor.scheduler.hooks.python_hooks import (
    hooks_from_mapping,
    load_entry_points,
    load_hook_files,
)

WAIT_S = 10.0
PRE = HookEvent.PRE_EXECUTION


def ctx(event: HookEvent = PRE, **fields: object) -> HookContext:
    return HookContext(event=event, execution_id="e1", command="echo hi", **fields)  # type: ignore[arg-type]


def write(directory: Path, name: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


GOOD = """
    from cc_executor.scheduler.hooks import HookResult, hook

    def log_start(ctx):
        return HookResult(message=f"saw {ctx.command}")

    @hook(required=True, timeout_s=3, name="gate")
    async def check(ctx):
        return HookResult(proceed=ctx.metadata.get("allow", True), message="checked")

    HOOKS = {
        "pre_execution": [log_start, check],
        "post_execution": log_start,
    }
"""


def runner_for(directory: Path, **kwargs: object) -> HookRunner:
    runner = HookRunner(hooks_dir=directory, entry_point_group=None, **kwargs)  # type: ignore[arg-type]
    runner.load()
    return runner


async def test_hook_file_is_discovered_with_names_events_and_options(tmp_path: Path) -> None:
    write(tmp_path, "audit.py", GOOD)
    runner = runner_for(tmp_path)
    rows = {row["name"]: row for row in runner.status()["hooks"]}  # type: ignore[attr-defined]
    assert set(rows) == {"audit.log_start", "audit.gate"}
    assert rows["audit.log_start"]["events"] == ["pre_execution", "post_execution"]
    assert rows["audit.log_start"]["required"] is False
    assert rows["audit.log_start"]["timeout"] == 10.0  # the runner's default
    assert rows["audit.gate"] == {
        "name": "audit.gate",
        "kind": "python",
        "events": ["pre_execution"],
        "agents": None,
        "required": True,
        "timeout": 3,
        "source": str(tmp_path / "audit.py"),
    }
    outcome = await runner.run(PRE, ctx())
    assert outcome.proceed
    assert [(r.hook, r.message) for r in outcome.runs] == [
        ("audit.log_start", "saw echo hi"),
        ("audit.gate", "checked"),
    ]
    blocked = await runner.run(PRE, ctx(metadata={"allow": False}))
    assert not blocked.proceed
    assert blocked.blocked_by == ("audit.gate",)
    assert blocked.message == "audit.gate: checked"


def test_hook_files_are_loaded_by_path_not_sys_path(tmp_path: Path) -> None:
    write(tmp_path, "zz_unique_hookfile.py", GOOD)
    before = list(sys.path)
    runner_for(tmp_path)
    assert sys.path == before
    assert str(tmp_path) not in sys.path


def test_broken_files_are_reported_and_the_rest_still_load(tmp_path: Path) -> None:
    write(tmp_path, "a_good.py", GOOD)
    write(tmp_path, "b_syntax.py", "def broken(:\n")
    write(tmp_path, "c_raises.py", "raise RuntimeError('boom at import')\n")
    write(tmp_path, "d_exits.py", "import sys\nsys.exit(3)\n")
    write(tmp_path, "e_nohooks.py", "X = 1\n")
    write(tmp_path, "f_badevent.py", "HOOKS = {'pre_exec': print, 'post_task': 42}\n")
    write(tmp_path, "_helper.py", "raise RuntimeError('never imported')\n")
    runner = runner_for(tmp_path)
    status = runner.status()
    errors = {Path(e["source"]).name: e["error"] for e in status["errors"]}  # type: ignore[attr-defined]
    assert "SyntaxError" in errors["b_syntax.py"]
    assert errors["c_raises.py"] == "RuntimeError: boom at import (line 1)"
    assert "SystemExit" in errors["d_exits.py"]
    assert "no module-level HOOKS" in errors["e_nohooks.py"]
    assert "_helper.py" not in errors
    bad_event = [e["error"] for e in status["errors"] if "f_badevent" in e["source"]]  # type: ignore[attr-defined]
    assert any("unknown event 'pre_exec'" in e for e in bad_event)
    assert any("42 is not callable" in e for e in bad_event)
    assert {h.name for h in runner.hooks} == {"a_good.log_start", "a_good.gate"}
    assert status["configured"] is True


def test_hooks_mapping_must_be_a_mapping() -> None:
    loaded = hooks_from_mapping([print], source="x", prefix="x")
    assert loaded.hooks == []
    assert "not a mapping" in loaded.errors[0].error


def test_same_names_get_suffixes() -> None:
    loaded = hooks_from_mapping(
        {"pre_task": [lambda c: None, lambda c: None]}, source="s", prefix="p"
    )
    assert [h.name for h in loaded.hooks] == ["p.<lambda>", "p.<lambda>#2"]


def test_hook_rejects_a_non_positive_timeout() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        hook(timeout_s=0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, HookResult()),
        (False, HookResult(proceed=False)),
        ("note", HookResult(message="note")),
        ({"proceed": False, "message": "no"}, HookResult(False, "no")),
        (HookResult(True, "x" * 5000), HookResult(True, "x" * 1999 + "…")),
    ],
)
def test_return_values_are_coerced(value: object, expected: HookResult) -> None:
    assert coerce_result(value) == expected


async def test_a_bad_return_value_is_a_failure(tmp_path: Path) -> None:
    write(tmp_path, "weird.py", "def f(ctx):\n    return 42\nHOOKS = {'pre_task': f}\n")
    runner = runner_for(tmp_path)
    outcome = await runner.run(HookEvent.PRE_TASK, ctx(HookEvent.PRE_TASK))
    assert outcome.proceed  # not required
    assert outcome.runs[0].ok is False
    assert "returned int" in (outcome.runs[0].error or "")
    assert len(outcome.warnings) == 1


async def test_sync_hooks_run_off_the_loop_thread(tmp_path: Path) -> None:
    write(
        tmp_path,
        "where.py",
        """
        import threading

        def where(ctx):
            return threading.current_thread().name

        HOOKS = {"pre_execution": where}
        """,
    )
    runner = runner_for(tmp_path)
    outcome = await runner.run(PRE, ctx())
    assert outcome.runs[0].message == "hook:where.where"
    assert outcome.runs[0].message != threading.current_thread().name


async def test_a_hanging_sync_hook_times_out_without_blocking_the_loop() -> None:
    release = threading.Event()

    def stuck(ctx: HookContext) -> None:
        release.wait(WAIT_S)  # bounded: released by the test as soon as the timeout is seen

    loaded = hooks_from_mapping(
        {"pre_execution": hook(timeout_s=0.2)(stuck)}, source="t", prefix="t"
    )
    runner = HookRunner(hooks_dir=None, entry_point_group=None, builtins=loaded.hooks)
    runner.load()
    try:
        async with asyncio.timeout(WAIT_S):
            outcome = await runner.run(PRE, ctx())
    finally:
        release.set()
    assert outcome.proceed
    assert outcome.runs[0].error == "timed out after 0.2s"


def _make_distribution(root: Path, module: str, group: str, body: str) -> None:
    """A real installed-looking distribution: a module and a dist-info with entry points."""
    (root / f"{module}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    info = root / f"{module}_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module}-dist\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[{group}]\n{module} = {module}:HOOKS\nbroken_{module} = {module}:MISSING\n",
        encoding="utf-8",
    )


async def test_entry_points_are_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = f"cc_hooks_plugin_{uuid.uuid4().hex[:8]}"
    _make_distribution(
        tmp_path,
        module,
        ENTRY_POINT_GROUP,
        """
        def greet(ctx):
            return f"plugin saw {ctx.event}"

        HOOKS = {"post_task": greet}
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        loaded = load_entry_points()
        names = [h.name for h in loaded.hooks]
        assert f"{module}.greet" in names
        assert any(
            e.source.startswith(f"entry point broken_{module}") and "MISSING" in e.error
            for e in loaded.errors
        )
        runner = HookRunner(hooks_dir=None)  # the real group
        runner.load()
        outcome = await runner.run(HookEvent.POST_TASK, ctx(HookEvent.POST_TASK))
        assert any(r.message == "plugin saw post_task" for r in outcome.runs)
    finally:
        sys.modules.pop(module, None)


def test_missing_directory_loads_nothing(tmp_path: Path) -> None:
    loaded = load_hook_files(tmp_path / "absent")
    assert loaded.hooks == []
    assert loaded.errors == []
