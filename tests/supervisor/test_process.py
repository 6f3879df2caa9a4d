"""ProcessGroup on its own: spawn in a new session, signals to the group, TERM/grace/KILL,
cancellation safety, the tree snapshot and the pipe size (the sweep itself: test_sweep.py)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.supervisor.probes import WAIT_S, alive, eventually, marked_alive, pids

from cc_executor.supervisor import procfs
from cc_executor.supervisor import sweep as sweep_module
from cc_executor.supervisor.process import PIPE_BYTES, ProcessGroup, Stream
from cc_executor.supervisor.procfs import MARKER_ENV

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


async def test_exit_is_seen_without_pidfds(monkeypatch: pytest.MonkeyPatch) -> None:
    # A kernel without pidfds (< 5.3), or a daemon out of fds: a thread waits for the leader.
    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(38, "pidfd_open not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    collector = Collector(b"done")
    group = await spawn(["/bin/sh", "-c", "echo done; exit 3"], collector)
    try:
        async with asyncio.timeout(WAIT_S):
            assert await group.wait() == 3
            await group.wait_output_closed()
        assert bytes(collector.out["stdout"]) == b"done\n"
    finally:
        group.close()


async def test_a_leader_killed_by_a_signal_reports_it() -> None:
    collector = Collector(b"up")
    group = await spawn(["/bin/sh", "-c", "echo up; exec sleep 30"], collector)
    try:
        async with asyncio.timeout(WAIT_S):
            await collector.seen.wait()
            group.signal_group(signal.SIGKILL)
            assert await group.wait() == -signal.SIGKILL
            await group.wait_output_closed()
        assert group.exited
    finally:
        group.close()


async def test_close_kills_a_leader_still_running_and_it_is_reaped() -> None:
    collector = Collector(b"up")
    group = await spawn(["/bin/sh", "-c", "echo up; exec sleep 30"], collector)
    async with asyncio.timeout(WAIT_S):
        await collector.seen.wait()
    group.close()  # only after the end in normal use; a leader left running must not survive it
    async with asyncio.timeout(WAIT_S):
        assert await group.wait() == -signal.SIGKILL
    assert not alive(group.pid)


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
        # kill_now sends SIGKILL to all and waits for nothing: the group's middle child may
        # still be exiting when the two above are gone.
        await eventually(lambda: not any(alive(p) for p in everyone), "every process gone")
        await eventually(lambda: marked_alive(group.marker) == [], "no marked process left")
    finally:
        group.close()


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


# --- coalesced sweeps, incremental rounds, tree snapshot, pipe size ------------------------------


async def test_descendants_from_children_files_match_the_stat_scan() -> None:
    collector = Collector(b"ready\n")
    group = await spawn(
        ["/bin/sh", "-c", "sleep 30 & (sleep 30 & sleep 30 & wait) & echo ready; wait"], collector
    )
    try:
        async with asyncio.timeout(WAIT_S):
            await collector.seen.wait()
        await eventually(lambda: len(procfs.descendants(group.pid)) >= 4, "tree up")
        via_children = set(procfs._descendants_procfs(group.pid))
        via_stat = set(procfs._descendants_procfs_stat(group.pid))
        assert via_children == via_stat
        assert len(via_children) >= 4
    finally:
        await group.terminate(grace_s=1.0)
        group.close()


def _children_of_main_thread(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


async def test_the_tree_walk_finds_a_child_forked_by_another_thread() -> None:
    # The children of a thread are listed under that thread only: a multi-threaded parent's
    # threads are all walked, not just its main one.
    program = (
        "import signal, subprocess, threading\n"
        "def fork():\n"
        "    subprocess.Popen(['sleep', '30'])\n"
        "    print('ready', flush=True)\n"
        "    threading.Event().wait()  # alive, or its child would pass to the main thread\n"
        "threading.Thread(target=fork, daemon=True).start()\n"
        "signal.pause()  # until the group is terminated\n"
    )
    collector = Collector(b"ready\n")
    group = await spawn([sys.executable, "-c", program], collector)
    try:
        async with asyncio.timeout(WAIT_S):
            await collector.seen.wait()
        assert os.stat(f"/proc/{group.pid}/task").st_nlink > 3  # two threads at least
        assert not _children_of_main_thread(group.pid)
        walked = procfs._descendants_procfs(group.pid)
        assert len(walked) == 1
        assert set(walked) == set(procfs._descendants_procfs_stat(group.pid))
    finally:
        await group.terminate(grace_s=1.0)
        group.close()


async def test_output_pipes_are_widened() -> None:
    collector = Collector(b"x")
    group = await spawn(["/bin/sh", "-c", "cat >/dev/null"], collector, stdin=True)
    try:
        for pipe in (group._child.popen.stdout, group._child.popen.stderr):
            assert pipe is not None
            size = fcntl.fcntl(pipe.fileno(), 1032)  # F_GETPIPE_SZ
            if size != PIPE_BYTES:
                pytest.skip(f"pipe size quota: {size}")
    finally:
        await group.write_stdin(b"", eof=True)
        async with asyncio.timeout(WAIT_S):
            await group.wait()
        await group.kill_all()
        group.close()


async def test_live_leaders_are_known_to_the_sweep_until_reaped() -> None:
    # While a leader lives (and so keeps its pid), a sweep knows its marker without reading its
    # environ; once it is reaped its pid may be reused, so it must be read like any process.
    collector = Collector(b"\n")
    group = await spawn(["/bin/sh", "-c", "echo up; exec sleep 30"], collector)
    try:
        async with asyncio.timeout(WAIT_S):
            await collector.seen.wait()
        assert procfs.LEADERS[group.pid] == group.marker.encode()
        group.signal_group(signal.SIGKILL)
        async with asyncio.timeout(WAIT_S):
            await group.wait()
        assert group.pid not in procfs.LEADERS
    finally:
        group.close()
    assert group.pid not in procfs.LEADERS


async def test_a_leader_reaped_while_stdin_connects_is_not_kept_as_live(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With stdin the spawn awaits its pipe's connection; a child that exits meanwhile is reaped
    # before the spawn returns, and must not stay registered as a live leader.
    loop = asyncio.get_running_loop()
    connect = loop.connect_write_pipe

    async def connect_after_the_exit(
        factory: Callable[[], asyncio.BaseProtocol], pipe: object
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        protocol = factory()
        async with asyncio.timeout(WAIT_S):
            await protocol.exited.wait()  # type: ignore[attr-defined]
        return await connect(lambda: protocol, pipe)

    monkeypatch.setattr(loop, "connect_write_pipe", connect_after_the_exit)
    group = await spawn(["true"], Collector(), stdin=True)
    try:
        assert group.exited
        assert group.pid not in procfs.LEADERS
        assert await group.wait() == 0
    finally:
        group.close()


async def test_a_spawn_whose_stdin_cannot_connect_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    before = set(procfs.LEADERS)

    async def refuse(*args: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(loop, "connect_write_pipe", refuse)
    marker = uuid.uuid4().hex
    with pytest.raises(OSError, match="Too many open files"):
        await ProcessGroup.spawn(
            ["sleep", "30"],
            cwd=None,
            env=dict(os.environ),
            stdin=True,
            marker=marker,
            on_output=Collector(),
        )
    assert set(procfs.LEADERS) == before
    await eventually(lambda: not marked_alive(marker), "the leader killed")


async def test_sweep_reads_no_live_leader_of_another_execution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 20 other executions are alive: sweeping one that ended must not read their environs
    # (a pass used to cost one read per live execution), and must still find what escaped.
    others = [await spawn(["sleep", "30"], Collector()) for _ in range(20)]
    collector = Collector()
    group = await spawn(
        ["/bin/sh", "-c", "setsid sleep 30 >/dev/null 2>&1 & echo ready"], collector
    )
    read: list[int] = []
    real_read = procfs._read_proc_file

    def counting(path: str, size: int) -> bytes | None:
        if path.endswith("/environ"):
            read.append(int(path.split("/")[-2]))
        return real_read(path, size)

    try:
        async with asyncio.timeout(WAIT_S):
            await collector.seen.wait()
            await group.wait()
            monkeypatch.setattr(procfs, "_read_proc_file", counting)
            assert await sweep_module.sweep(group.marker) == 1
            monkeypatch.undo()
        assert marked_alive(group.marker) == []
        assert read  # it did read the other processes
        assert not {other.pid for other in others} & set(read)
        assert all(alive(other.pid) for other in others)
    finally:
        for proc in (group, *others):
            proc.signal_group(signal.SIGKILL)
            async with asyncio.timeout(WAIT_S):
                await proc.wait()
            proc.close()
