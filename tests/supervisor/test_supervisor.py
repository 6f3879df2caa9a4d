"""The Supervisor API: validation, ids, limits, input, lookups, forgetting, env, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import TEST_GRACE_S
from tests.polling import poll_until
from tests.supervisor.probes import (
    alive,
    eventually,
    finished,
    marked_alive,
    methods,
    output,
    pids,
    wait_for_output,
)

from cc_executor.errors import (
    ExecutionNotFound,
    InvalidParams,
    InvalidTransition,
    LimitReached,
    ServiceError,
)
from cc_executor.supervisor import ExecutionSpec, ExecutionState, Supervisor
from cc_executor.supervisor.procfs import MARKER_ENV

Program = Callable[..., list[str]]
SLEEP = ["sleep", "30"]


def test_shell_argv() -> None:
    assert Supervisor(shell="/bin/zsh").shell_argv("echo $HOME") == ["/bin/zsh", "-c", "echo $HOME"]


async def test_execute_before_start_is_refused() -> None:
    with pytest.raises(ServiceError):
        await Supervisor(shell="/bin/sh").execute(ExecutionSpec(argv=["true"]))


# --- validation ------------------------------------------------------------------------------


async def test_missing_cwd(supervisor: Supervisor, tmp_path: Path) -> None:
    with pytest.raises(InvalidParams, match="cwd") as info:
        await supervisor.execute(ExecutionSpec(argv=["true"], cwd=tmp_path / "nope"))
    assert info.value.code == -32602
    assert supervisor.running_count == 0


async def test_program_not_found(supervisor: Supervisor) -> None:
    with pytest.raises(InvalidParams, match="not found"):
        await supervisor.execute(ExecutionSpec(argv=["no-such-program-cc-executor"]))
    with pytest.raises(InvalidParams, match="not found"):
        await supervisor.execute(ExecutionSpec(argv=["./nope.sh"]))


async def test_program_not_executable(supervisor: Supervisor, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")  # no x bit
    with pytest.raises(InvalidParams, match="not executable"):
        await supervisor.execute(ExecutionSpec(argv=["./script.sh"], cwd=tmp_path))
    with pytest.raises(InvalidParams, match="not executable"):
        await supervisor.execute(ExecutionSpec(argv=[str(tmp_path)]))


async def test_relative_program_resolves_against_cwd(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho from-script\n")
    script.chmod(0o755)
    execution = await supervisor.execute(ExecutionSpec(argv=["./script.sh"], cwd=tmp_path))
    await finished(execution)
    assert output(execution) == b"from-script\n"


@pytest.mark.parametrize(
    "spec",
    [
        ExecutionSpec(argv=[]),
        ExecutionSpec(argv=["true"], timeout=0),
        ExecutionSpec(argv=["true"], idle_timeout=-1),
        ExecutionSpec(argv=["true"], env={"A=B": "x"}),
        ExecutionSpec(argv=["true"], execution_id=""),
        ExecutionSpec(argv=["true\0"]),
    ],
)
async def test_bad_specs(supervisor: Supervisor, spec: ExecutionSpec) -> None:
    with pytest.raises(InvalidParams):
        await supervisor.execute(spec)


# --- ids and lookups -------------------------------------------------------------------------


async def test_unknown_id(supervisor: Supervisor) -> None:
    with pytest.raises(ExecutionNotFound) as info:
        supervisor.get("nope")
    assert info.value.code == -32003
    assert info.value.data == {"execution_id": "nope"}
    for control in (supervisor.pause, supervisor.resume, supervisor.cancel):
        with pytest.raises(ExecutionNotFound):
            await control("nope")
    with pytest.raises(ExecutionNotFound):
        await supervisor.write_input("nope", b"x")


async def test_client_chosen_id_is_idempotent(supervisor: Supervisor) -> None:
    first = await supervisor.execute(ExecutionSpec(argv=SLEEP, execution_id="job-1"))
    again = await supervisor.execute(ExecutionSpec(argv=SLEEP, execution_id="job-1"))
    assert again is first
    assert "job-1" in supervisor
    assert supervisor.running_count == 1
    with pytest.raises(InvalidParams, match="already used"):
        await supervisor.execute(ExecutionSpec(argv=["sleep", "31"], execution_id="job-1"))
    await supervisor.cancel("job-1")
    await finished(first)


async def test_list_newest_first_with_filters(supervisor: Supervisor) -> None:
    done = await supervisor.execute(ExecutionSpec(argv=["true"]))
    await finished(done)
    running = await supervisor.execute(ExecutionSpec(argv=SLEEP))
    assert supervisor.list() == [running, done]
    assert supervisor.list(limit=1) == [running]
    assert supervisor.list(states=[ExecutionState.COMPLETED]) == [done]
    assert supervisor.list(states=["running"]) == [running]
    with pytest.raises(InvalidParams):
        supervisor.list(states=["sideways"])
    await supervisor.cancel(running.id)
    await finished(running)


async def test_finished_executions_are_forgotten_oldest_first(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    async with Supervisor(
        shell="/bin/sh",
        finished_executions_kept=2,
        event_log_memory_bytes=100,  # forces every execution's events into a spool file
        spool_dir=spool,
        base_env=dict(os.environ),
    ) as sup:
        runs = []
        for n in range(4):
            execution = await sup.execute(ExecutionSpec(argv=["seq", "1", str(100 + n)]))
            await finished(execution)
            runs.append(execution)
        for old in runs[:2]:
            with pytest.raises(ExecutionNotFound):
                sup.get(old.id)
        assert [sup.get(e.id) for e in runs[2:]] == runs[2:]
        assert len(os.listdir(spool)) == 2  # the forgotten ones' spool files are gone
    assert os.listdir(spool) == []  # and the rest with the supervisor


# --- limits ----------------------------------------------------------------------------------


async def test_limit_on_running_executions(tmp_path: Path) -> None:
    async with Supervisor(
        shell="/bin/sh", max_executions=2, terminate_grace_s=TEST_GRACE_S, spool_dir=tmp_path
    ) as sup:
        first = await sup.execute(ExecutionSpec(argv=SLEEP))
        await sup.execute(ExecutionSpec(argv=SLEEP))
        with pytest.raises(LimitReached) as info:
            await sup.execute(ExecutionSpec(argv=SLEEP))
        assert info.value.code == -32001
        assert info.value.data == {"limit": 2, "running": 2}
        await sup.cancel(first.id)
        await finished(first)
        third = await sup.execute(ExecutionSpec(argv=SLEEP))
        assert sup.running_count == 2
    assert third.state is ExecutionState.CANCELED


# --- input -----------------------------------------------------------------------------------


async def test_input(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(ExecutionSpec(argv=["cat"], stdin=True))
    assert await supervisor.write_input(execution.id, b"hello\n") == 6
    await wait_for_output(execution, b"hello\n")
    assert await supervisor.write_input(execution.id, b"bye", eof=True) == 3
    done = await finished(execution)
    assert done["status"] == "completed"
    assert output(execution) == b"hello\nbye"
    with pytest.raises(InvalidTransition):
        await supervisor.write_input(execution.id, b"late")


async def test_input_after_eof_is_refused(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(ExecutionSpec(argv=SLEEP, stdin=True))
    await supervisor.write_input(execution.id, b"", eof=True)
    with pytest.raises(InvalidTransition, match="closed"):
        await supervisor.write_input(execution.id, b"x")
    await supervisor.cancel(execution.id)
    await finished(execution)


async def test_input_without_stdin_is_refused(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(ExecutionSpec(argv=SLEEP))
    with pytest.raises(InvalidTransition, match="without stdin") as info:
        await supervisor.write_input(execution.id, b"x")
    assert info.value.data["requested"] == "INPUT"
    await supervisor.cancel(execution.id)
    await finished(execution)


# --- environment -----------------------------------------------------------------------------


async def test_child_environment(tmp_path: Path) -> None:
    base = {"PATH": os.environ["PATH"], "CC_EXECUTOR_TOKEN": "secret", "KEEP": "base"}
    async with Supervisor(shell="/bin/sh", spool_dir=tmp_path, base_env=base) as sup:
        execution = await sup.execute(
            ExecutionSpec(
                argv=[sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
                env={"EXTRA": "1", "KEEP": "override", MARKER_ENV: "forged"},
            )
        )
        await finished(execution)
    env = json.loads(output(execution))
    assert "CC_EXECUTOR_TOKEN" not in env
    assert env["KEEP"] == "override"
    assert env["EXTRA"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env[MARKER_ENV] == execution.id


async def test_default_base_env_has_only_a_path(tmp_path: Path) -> None:
    async with Supervisor(shell="/bin/sh", spool_dir=tmp_path) as sup:
        execution = await sup.execute(ExecutionSpec(argv=["env"]))
        await finished(execution)
    names = {line.split("=", 1)[0] for line in output(execution).decode().splitlines()}
    assert {"PATH", "PYTHONUNBUFFERED", MARKER_ENV} <= names
    assert "HOME" not in names


# --- cancel and shutdown ---------------------------------------------------------------------


async def test_cancel_returns_before_completion(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(ExecutionSpec(argv=SLEEP))
    returned = await supervisor.cancel(execution.id)
    assert returned is execution
    assert execution.state is ExecutionState.CANCELED
    assert methods(execution)[-1] == "process.canceled"
    assert (await finished(execution))["status"] == "canceled"
    assert supervisor.running_count == 0


async def test_shutdown_kills_everything(tmp_path: Path, program: Program) -> None:
    async with Supervisor(
        shell="/bin/sh", terminate_grace_s=0.2, spool_dir=tmp_path, base_env=dict(os.environ)
    ) as sup:
        executions = [
            await sup.execute(ExecutionSpec(argv=program("tree.py", "setsid", "--ignore-term"))),
            await sup.execute(ExecutionSpec(argv=program("tree.py", "group"))),
        ]
        everyone: list[int] = []
        for execution in executions:
            stdout = await wait_for_output(execution, b"ready\n")
            everyone += pids(stdout, "leader") + pids(stdout, "child") + pids(stdout, "escaped")
        await sup.pause(executions[1].id)
        assert len(everyone) == 5
    assert all(e.finished and e.state is ExecutionState.CANCELED for e in executions)
    assert not any(alive(p) for p in everyone)
    assert all(marked_alive(e.id) == [] for e in executions)
    with pytest.raises(ServiceError):
        await sup.execute(ExecutionSpec(argv=["true"]))


async def test_cancelled_owner_kills_synchronously(tmp_path: Path, program: Program) -> None:
    """If the task owning the supervisor is cancelled, nothing of any execution survives."""
    seen: list[int] = []
    ids: list[str] = []
    ready = asyncio.Event()

    async def owner() -> None:
        async with Supervisor(
            shell="/bin/sh", terminate_grace_s=60.0, spool_dir=tmp_path, base_env=dict(os.environ)
        ) as sup:
            execution = await sup.execute(
                ExecutionSpec(argv=program("tree.py", "setsid", "--ignore-term"))
            )
            ids.append(execution.id)
            stdout = await wait_for_output(execution, b"ready\n")
            seen.extend(pids(stdout, "leader") + pids(stdout, "escaped"))
            ready.set()
            await asyncio.Event().wait()  # until cancelled

    async with asyncio.timeout(10), asyncio.TaskGroup() as tasks:
        task = tasks.create_task(owner())
        await ready.wait()
        task.cancel()
    await eventually(lambda: not any(alive(p) for p in seen), "every process gone")
    assert marked_alive(ids[0]) == []


async def test_program_errors_come_from_the_spawn_with_the_same_messages(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    with pytest.raises(InvalidParams, match="not found on the child's PATH") as info:
        await supervisor.execute(ExecutionSpec(argv=["no-such-program-cc-executor"]))
    assert info.value.data == {"program": "no-such-program-cc-executor"}
    with pytest.raises(InvalidParams, match=r"program '\./nope' not found$"):
        await supervisor.execute(ExecutionSpec(argv=["./nope"], cwd=tmp_path))
    assert supervisor.running_count == 0
    assert supervisor.list() == []


async def test_an_owner_failing_inside_kills_the_groups_and_keeps_its_own_exception() -> None:
    import psutil
    import pytest

    from cc_executor.supervisor import ExecutionSpec, Supervisor

    class OwnerBug(Exception):
        pass

    started = []

    async def owner() -> None:
        async with Supervisor(shell="/bin/sh") as sup:
            started.append(await sup.execute(ExecutionSpec(argv=["sleep", "60"])))
            raise OwnerBug

    with pytest.raises(OwnerBug):  # not an ExceptionGroup around it
        await owner()
    execution = started[0]
    assert execution.state.value == "canceled"
    assert execution.pid is not None
    leader = execution.pid
    await poll_until(
        lambda: (
            not psutil.pid_exists(leader) or psutil.Process(leader).status() == psutil.STATUS_ZOMBIE
        ),
        timeout=10,
        what="the SIGKILLed leader to die",
    )
