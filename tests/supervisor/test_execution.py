"""One execution end to end with real processes: output fidelity, completion, timeouts, pause,
cancel, and that nothing of an execution outlives it."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from loguru import logger
from tests.supervisor.probes import (
    alive,
    completion,
    eventually,
    finished,
    marked_alive,
    messages,
    methods,
    output,
    pids,
    status,
    wait_for_output,
)

from cc_executor.errors import InvalidTransition
from cc_executor.supervisor import ExecutionSpec, ExecutionState, Supervisor
from cc_executor.supervisor import execution as execution_module

Program = Callable[..., list[str]]
MiB = 1024 * 1024


def shell(sup: Supervisor, command: str, **kwargs: object) -> ExecutionSpec:
    return ExecutionSpec(argv=sup.shell_argv(command), display_command=command, **kwargs)  # type: ignore[arg-type]


# --- output ----------------------------------------------------------------------------------


async def test_events_in_order_started_output_completed(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(shell(supervisor, "echo hi"))
    done = await finished(execution)
    assert methods(execution) == ["process.started", "process.output", "process.completed"]
    started = messages(execution)[0]["params"]
    assert started == {
        "execution_id": execution.id,
        "seq": 1,
        "pid": execution.pid,
        "pgid": execution.pgid,
        "command": "echo hi",
        "attempt": 1,
    }
    assert execution.pid == execution.pgid
    assert [m["params"]["seq"] for m in messages(execution)] == [1, 2, 3]
    assert done["status"] == "completed"
    assert done["exit_code"] == 0
    assert done["signal"] is None
    assert done["execution_time"] >= 0
    assert output(execution) == b"hi\n"
    assert execution.log.closed
    assert execution.state is ExecutionState.COMPLETED


async def test_seq_200000_complete_and_in_order(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(shell(supervisor, "seq 1 200000"))
    assert (await finished(execution))["status"] == "completed"
    expected = "".join(f"{n}\n" for n in range(1, 200001)).encode()
    assert output(execution) == expected


async def test_nine_megabyte_line_then_after(supervisor: Supervisor, program: Program) -> None:
    argv = program(
        "write_bytes.py", f"repeat:{ord('x')}:{9 * MiB}", "hex:0a", "hex:" + b"after\n".hex()
    )
    execution = await supervisor.execute(ExecutionSpec(argv=argv))
    await finished(execution)
    assert output(execution) == b"x" * (9 * MiB) + b"\nafter\n"
    pieces = [m["params"] for m in messages(execution) if m["method"] == "process.output"]
    assert all(len(p["data"]) <= 64 * 1024 for p in pieces)
    assert pieces[0]["truncated"] is True  # the long line spans pieces


async def test_invalid_utf8_round_trips_exactly(supervisor: Supervisor, program: Program) -> None:
    raw = b"ok \xff\xfe\x80 mid \xc3\x28 end\n\xe2\x82"  # invalid bytes and a cut character
    execution = await supervisor.execute(
        ExecutionSpec(argv=program("write_bytes.py", "hex:" + raw.hex()))
    )
    await finished(execution)
    assert output(execution) == raw
    assert any(m["params"].get("encoding") == "base64" for m in messages(execution)[1:-1])


async def test_stderr_kept_apart(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(shell(supervisor, "echo out; echo err >&2; echo out2"))
    await finished(execution)
    assert output(execution, "stdout") == b"out\nout2\n"
    assert output(execution, "stderr") == b"err\n"


async def test_nonzero_exit_is_failed(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(shell(supervisor, "exit 3"))
    done = await finished(execution)
    assert (done["status"], done["exit_code"], done["signal"]) == ("failed", 3, None)


async def test_killed_by_a_signal_is_failed_with_its_name(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(shell(supervisor, "kill -KILL $$"))
    done = await finished(execution)
    assert (done["status"], done["exit_code"], done["signal"]) == ("failed", None, "SIGKILL")


async def test_info(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(shell(supervisor, "true", metadata={"task": 7}))
    await finished(execution)
    info = execution.info()
    assert info["execution_id"] == execution.id
    assert info["state"] == "completed"
    assert info["command"] == "true"
    assert info["exit_code"] == 0
    assert info["metadata"] == {"task": 7}
    assert info["last_seq"] == execution.log.last_seq == 2
    assert info["created_at"] <= info["started_at"] <= info["ended_at"]  # type: ignore[operator]


# --- timeouts --------------------------------------------------------------------------------


async def test_timeout_kills_and_keeps_partial_output(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(
        shell(supervisor, "echo partial; exec sleep 30", timeout=0.3)
    )
    done = await finished(execution)
    assert done["status"] == "timeout"
    assert done["reason"] == "timeout"
    assert output(execution) == b"partial\n"
    assert marked_alive(execution.id) == []
    assert execution.state is ExecutionState.TIMEOUT


async def test_idle_timeout(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(
        shell(supervisor, "echo once; exec sleep 30", idle_timeout=0.3)
    )
    done = await finished(execution)
    assert (done["status"], done["reason"]) == ("timeout", "idle_timeout")
    assert output(execution) == b"once\n"


async def test_regular_output_keeps_idle_timeout_away(
    supervisor: Supervisor, program: Program
) -> None:
    execution = await supervisor.execute(
        ExecutionSpec(argv=program("ticker.py", "0.05", "12"), idle_timeout=0.4)
    )
    done = await finished(execution)
    assert done["status"] == "completed"  # ran ~0.6 s, longer than the idle timeout


async def test_paused_time_does_not_count_toward_timeout(supervisor: Supervisor) -> None:
    timeout = 0.4
    execution = await supervisor.execute(
        shell(supervisor, "echo ready; exec sleep 30", timeout=timeout)
    )
    await wait_for_output(execution, b"ready")
    await supervisor.pause(execution.id)
    # Paused for well over the timeout, it must not end.
    with pytest.raises(TimeoutError):
        await execution.wait(timeout * 3)
    assert execution.state is ExecutionState.PAUSED
    await supervisor.resume(execution.id)
    done = await finished(execution)
    assert done["status"] == "timeout"
    assert done["execution_time"] >= timeout * 3
    assert methods(execution)[-3:] == ["process.paused", "process.resumed", "process.completed"]


async def test_paused_time_counts_when_asked(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(
        shell(supervisor, "echo ready; exec sleep 30", timeout=0.4, timeout_includes_paused=True)
    )
    await wait_for_output(execution, b"ready")
    await supervisor.pause(execution.id)
    done = await finished(execution)
    assert done["status"] == "timeout"
    assert marked_alive(execution.id) == []


# --- pause, resume, cancel, trees ------------------------------------------------------------


async def test_pause_stops_every_member_resume_continues(
    supervisor: Supervisor, program: Program
) -> None:
    execution = await supervisor.execute(ExecutionSpec(argv=program("tree.py", "group")))
    stdout = await wait_for_output(execution, b"ready\n")
    members = pids(stdout, "leader") + pids(stdout, "child")
    assert len(members) == 3
    await supervisor.pause(execution.id)
    await eventually(lambda: all(status(p) == "stopped" for p in members), "all stopped")
    assert execution.state is ExecutionState.PAUSED
    with pytest.raises(InvalidTransition):
        await supervisor.pause(execution.id)
    await supervisor.resume(execution.id)
    await eventually(lambda: all(status(p) == "sleeping" for p in members), "all continued")
    with pytest.raises(InvalidTransition):
        await supervisor.resume(execution.id)
    await supervisor.cancel(execution.id)
    await finished(execution)


async def test_pause_then_cancel_kills_everything(supervisor: Supervisor, program: Program) -> None:
    execution = await supervisor.execute(ExecutionSpec(argv=program("tree.py", "group")))
    stdout = await wait_for_output(execution, b"ready\n")
    members = pids(stdout, "leader") + pids(stdout, "child")
    await supervisor.pause(execution.id)
    await eventually(lambda: all(status(p) == "stopped" for p in members), "all stopped")
    await supervisor.cancel(execution.id)
    assert execution.state is ExecutionState.CANCELED  # recorded before the group is gone
    done = await finished(execution)
    assert done["status"] == "canceled"
    assert done["reason"] == "canceled"
    assert not any(alive(p) for p in members)
    assert marked_alive(execution.id) == []
    assert methods(execution)[-3:] == ["process.paused", "process.canceled", "process.completed"]


async def test_cancel_kills_a_setsid_grandchild(supervisor: Supervisor, program: Program) -> None:
    execution = await supervisor.execute(ExecutionSpec(argv=program("tree.py", "setsid")))
    stdout = await wait_for_output(execution, b"ready\n")
    [escaped] = pids(stdout, "escaped")
    assert alive(escaped)
    assert escaped in marked_alive(execution.id)
    await supervisor.cancel(execution.id)
    done = await finished(execution)
    assert done["status"] == "canceled"
    assert not alive(escaped)
    assert marked_alive(execution.id) == []


async def test_escaped_grandchild_of_a_finished_command_is_killed(
    supervisor: Supervisor, program: Program
) -> None:
    execution = await supervisor.execute(ExecutionSpec(argv=program("tree.py", "setsid-exit")))
    done = await finished(execution)
    assert (done["status"], done["exit_code"]) == ("completed", 0)
    [escaped] = pids(output(execution), "escaped")
    assert not alive(escaped)
    assert marked_alive(execution.id) == []


async def test_background_child_of_a_finished_command_is_killed(
    supervisor: Supervisor, program: Program
) -> None:
    # The child keeps stdout open for 60 s: without the kill, this would never complete.
    execution = await supervisor.execute(ExecutionSpec(argv=program("tree.py", "background")))
    done = await finished(execution)
    assert (done["status"], done["exit_code"]) == ("completed", 0)
    [child] = pids(output(execution), "child")
    assert not alive(child)
    assert marked_alive(execution.id) == []


async def test_shell_background_job_is_killed(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(shell(supervisor, "sleep 30 & echo started"))
    done = await finished(execution)
    assert done["status"] == "completed"
    assert marked_alive(execution.id) == []


async def test_term_ignored_gets_kill_after_grace(supervisor: Supervisor, program: Program) -> None:
    execution = await supervisor.execute(ExecutionSpec(argv=program("ignore_term.py")))
    await wait_for_output(execution, b"ready")
    await supervisor.cancel(execution.id)
    done = await finished(execution)
    assert (done["status"], done["signal"]) == ("canceled", "SIGKILL")
    assert marked_alive(execution.id) == []


async def test_cancel_of_a_finished_execution_is_illegal(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(shell(supervisor, "true"))
    await finished(execution)
    with pytest.raises(InvalidTransition) as info:
        await supervisor.cancel(execution.id)
    assert info.value.data == {
        "execution_id": execution.id,
        "state": "completed",
        "requested": "CANCEL",
    }
    with pytest.raises(InvalidTransition):
        await supervisor.pause(execution.id)


async def test_completed_is_always_last_even_while_output_races(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(shell(supervisor, "seq 1 50000 & seq 1 50000 >&2; wait"))
    done = await finished(execution)
    assert done["status"] == "completed"
    assert completion(execution) == done
    assert methods(execution).count("process.completed") == 1
    assert len(output(execution, "stderr")) == len("".join(f"{n}\n" for n in range(1, 50001)))


async def test_follower_sees_live_stream_end_with_completion(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(shell(supervisor, "seq 1 1000"))
    seen: list[str] = []
    async with asyncio.timeout(10):
        async for item in execution.log.follow(0):
            seen.append(item.method)  # type: ignore[union-attr]
    assert seen[0] == "process.started"
    assert seen[-1] == "process.completed"


async def test_pipe_held_by_an_unfindable_process_is_reported(
    supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A grandchild that leaves the group *and* clears its environment is invisible to the sweep
    # once the leader is gone; completion must still come, after a bounded drain, with an error.
    monkeypatch.setattr(execution_module, "OUTPUT_DRAIN_TIMEOUT_S", 0.3)
    # The leader lingers so the escapee has exec'd "sleep" (and dropped the marker) by its exit.
    spec = shell(supervisor, "setsid env -i sleep 30 & echo $!; sleep 0.5")
    execution = await supervisor.execute(spec)
    try:
        done = await finished(execution)
        assert done["status"] == "completed"
        assert methods(execution)[-2:] == ["process.error", "process.completed"]
        error = messages(execution)[-2]["params"]
        assert error["code"] == -32603
        assert "still open" in error["error"]
    finally:
        for pid in pids(b"pid " + output(execution), "pid"):
            os.kill(pid, signal.SIGKILL)


async def test_cancel_sends_sigterm_to_what_left_the_group_too(
    supervisor: Supervisor, program: Program, tmp_path: Path
) -> None:
    # A grandchild that left both the group and the tree is only found by its marker. It gets
    # the group's SIGTERM (a chance to end cleanly) while the group dies, not only the sweep's
    # SIGKILL after it.
    target = tmp_path / "got"
    execution = await supervisor.execute(
        ExecutionSpec(argv=program("graceful_escapee.py", str(target)))
    )
    stdout = await wait_for_output(execution, b"ready\n")
    [escaped] = pids(stdout, "escaped")
    assert escaped not in {p.pid for p in psutil.Process(execution.pid).children(recursive=True)}
    await supervisor.cancel(execution.id)
    done = await finished(execution)
    assert done["status"] == "canceled"
    assert target.read_text() == "term"
    assert not alive(escaped)
    assert marked_alive(execution.id) == []


async def test_one_debug_line_at_the_start_and_one_at_the_end_and_none_at_info(
    supervisor: Supervisor,
) -> None:
    # Every execution is in the store's history; at INFO (the default) the log stays quiet.
    records: list[Any] = []
    handler = logger.add(records.append, level="DEBUG", format="{message}")
    try:
        execution = await supervisor.execute(shell(supervisor, "exit 3"))
        await finished(execution)
    finally:
        logger.remove(handler)
    start, end = [
        r.record for r in records if r.record["message"].startswith(f"execution {execution.id} ")
    ]
    assert {start["level"].name, end["level"].name} == {"DEBUG"}
    assert {start["name"], end["name"]} == {"cc_executor.supervisor.execution"}
    assert f"execution {execution.id} attempt 1 started pid={execution.pid}" in start["message"]
    assert f"execution {execution.id} failed exit_code=3" in end["message"]
