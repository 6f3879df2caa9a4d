"""ProcessGroup on its own: spawn in a new session, signals to the group, TERM/grace/KILL,
cancellation safety, and the sweep of escaped descendants by the environment marker."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Callable

import pytest
from tests.supervisor.probes import WAIT_S, alive, eventually, marked_alive, pids

from cc_executor.supervisor.process import (
    MARKER_ENV,
    ProcessGroup,
    Stream,
    find_marked_processes,
    sweep,
)

Program = Callable[..., list[str]]


class Collector:
    """Output callback that records both streams and signals when a needle shows up."""

    def __init__(self, needle: bytes = b"ready\n") -> None:
        self.out: dict[Stream, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self.needle = needle
        self.seen = asyncio.Event()

    def __call__(self, stream: Stream, data: bytes) -> None:
        self.out[stream] += data
        if self.needle in self.out["stdout"]:
            self.seen.set()


async def spawn(argv: list[str], collector: Collector, *, stdin: bool = False) -> ProcessGroup:
    marker = uuid.uuid4().hex
    return await ProcessGroup.spawn(
        argv, cwd=None, env=dict(os.environ), stdin=stdin, marker=marker, on_output=collector
    )


async def test_spawn_new_session_and_output(program: Program) -> None:
    collector = Collector(b"done")
    group = await spawn(["/bin/sh", "-c", "echo out; echo err >&2; echo done"], collector)
    try:
        assert group.pgid == group.pid
        async with asyncio.timeout(WAIT_S):
            assert await group.wait() == 0
            await group.wait_output_closed()
        assert bytes(collector.out["stdout"]) == b"out\ndone\n"
        assert bytes(collector.out["stderr"]) == b"err\n"
        assert group.returncode == 0
        await group.kill_all()
        assert group.signal_group(signal.SIGTERM) is False  # ESRCH: gone, not an error
    finally:
        group.close()


async def test_marker_is_in_the_child_env() -> None:
    collector = Collector(b"\n")
    group = await spawn(["/bin/sh", "-c", f'echo "${MARKER_ENV}"'], collector)
    try:
        async with asyncio.timeout(WAIT_S):
            await group.wait_output_closed()
        assert bytes(collector.out["stdout"]).strip().decode() == group.marker
    finally:
        group.close()


async def test_leader_exit_is_seen_while_a_child_holds_the_pipe(program: Program) -> None:
    collector = Collector()
    group = await spawn(program("tree.py", "background"), collector)
    try:
        async with asyncio.timeout(WAIT_S):
            assert await group.wait() == 0  # returns although the child keeps stdout open
        [child] = pids(bytes(collector.out["stdout"]), "child")
        assert alive(child)
        await group.kill_all()
        async with asyncio.timeout(WAIT_S):
            await group.wait_output_closed()
        assert not alive(child)
    finally:
        group.close()


async def test_terminate_escalates_to_kill_and_sweeps(program: Program) -> None:
    collector = Collector()
    group = await spawn(program("ignore_term.py"), collector)
    try:
        async with asyncio.timeout(WAIT_S):
            await collector.seen.wait()
            await group.terminate(grace_s=0.2)
            assert await group.wait() == -signal.SIGKILL
        assert marked_alive(group.marker) == []
    finally:
        group.close()


async def test_terminate_of_a_stopped_group(program: Program) -> None:
    collector = Collector()
    group = await spawn(program("tree.py", "group"), collector)
    try:
        async with asyncio.timeout(WAIT_S):
            await collector.seen.wait()
            group.signal_group(signal.SIGSTOP)
            await group.terminate(grace_s=5.0)  # TERM acts once CONT wakes the group: no grace wait
            assert await group.wait() == -signal.SIGTERM
        assert marked_alive(group.marker) == []
    finally:
        group.close()


async def test_cancelled_terminate_still_kills_everything(program: Program) -> None:
    collector = Collector()
    group = await spawn(program("tree.py", "setsid", "--ignore-term"), collector)
    try:
        async with asyncio.timeout(WAIT_S):
            await collector.seen.wait()
        stdout = bytes(collector.out["stdout"])
        everyone = pids(stdout, "leader") + pids(stdout, "escaped")
        assert len(everyone) == 2
        # The caller gives up during the (long) grace period: its cancellation must not leak.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await group.terminate(grace_s=60.0)
        await eventually(lambda: not any(alive(p) for p in everyone), "every process gone")
        assert marked_alive(group.marker) == []
    finally:
        group.close()


async def test_sweep_kills_marked_processes_outside_the_group() -> None:
    marker = uuid.uuid4().hex
    env = dict(os.environ)
    env[MARKER_ENV] = marker
    stray = await asyncio.create_subprocess_exec("sleep", "30", env=env, start_new_session=True)
    try:
        assert [p.pid for p in find_marked_processes(marker)] == [stray.pid]
        async with asyncio.timeout(WAIT_S):
            assert await sweep(marker) == 1
            assert await stray.wait() == -signal.SIGKILL
        assert find_marked_processes(marker) == []
    finally:
        if stray.returncode is None:
            stray.kill()
            await stray.wait()


def test_find_marked_never_returns_this_process() -> None:
    assert all(p.pid != os.getpid() for p in find_marked_processes("no-such-marker"))


async def test_stdin(program: Program) -> None:
    collector = Collector(b"hello\n")
    group = await spawn(["cat"], collector, stdin=True)
    try:
        assert group.stdin_open
        async with asyncio.timeout(WAIT_S):
            await group.write_stdin(b"hello\n")
            await collector.seen.wait()
            await group.write_stdin(b"", eof=True)
            assert await group.wait() == 0
        assert not group.stdin_open
        with pytest.raises(BrokenPipeError):
            await group.write_stdin(b"more")
    finally:
        group.close()


async def test_no_stdin_means_devnull() -> None:
    collector = Collector(b"\n")
    group = await spawn(["cat"], collector)
    try:
        async with asyncio.timeout(WAIT_S):
            assert await group.wait() == 0  # EOF at once
        assert not group.stdin_open
        with pytest.raises(BrokenPipeError):
            await group.write_stdin(b"x")
    finally:
        group.close()
