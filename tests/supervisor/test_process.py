"""ProcessGroup on its own: spawn in a new session, signals to the group, TERM/grace/KILL,
cancellation safety, and the sweep of escaped descendants by the environment marker."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import threading
import uuid
from collections.abc import Callable

import pytest
from tests.polling import poll_until
from tests.supervisor.probes import WAIT_S, alive, eventually, marked_alive, pids

from cc_executor.supervisor import process as process_module
from cc_executor.supervisor.process import (
    MARKER_ENV,
    PIPE_BYTES,
    ProcessGroup,
    Stream,
    Sweeper,
    find_marked_processes,
    sweep,
    sweeper,
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
        # Right after fork the child may still be in exec (its environ reads empty): wait.
        await poll_until(
            lambda: [p.pid for p in find_marked_processes(marker)] == [stray.pid],
            timeout=WAIT_S,
            what="the stray to be found by its marker",
        )
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


# --- coalesced sweeps, incremental rounds, tree snapshot, pipe size ------------------------------


async def _marked_stray(marker: str, script: str = "exec sleep 30") -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env[MARKER_ENV] = marker
    return await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", script, env=env, start_new_session=True
    )


async def test_sweeps_completing_together_share_one_scan_and_each_kills_its_own() -> None:
    markers = [uuid.uuid4().hex for _ in range(4)]
    strays = [await _marked_stray(marker) for marker in markers]
    bystander = await _marked_stray(uuid.uuid4().hex)  # someone else's marker: never touched
    try:
        before = sweeper().scans
        async with asyncio.timeout(WAIT_S):
            counts = await asyncio.gather(*(sweep(marker) for marker in markers))
            codes = await asyncio.gather(*(stray.wait() for stray in strays))
        assert counts == [1, 1, 1, 1]
        assert codes == [-signal.SIGKILL] * 4
        assert sweeper().scans - before == 1  # one /proc pass served all four
        assert bystander.returncode is None
        for marker in markers:
            assert find_marked_processes(marker) == []
    finally:
        for proc in [*strays, bystander]:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_sweeper_answers_a_marker_only_with_a_pass_started_after_it_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = threading.Event()
    release = threading.Event()
    passes: list[frozenset[bytes]] = []
    real_scan = process_module._scan_all

    def slow_scan(
        markers: frozenset[bytes], floor: int | None = None
    ) -> tuple[dict[bytes, list[int]], frozenset[str]]:
        passes.append(markers)
        started.set()
        release.wait(WAIT_S)
        return real_scan(markers, floor)

    monkeypatch.setattr(process_module, "_scan_all", slow_scan)
    sweeper_ = Sweeper(threaded=True)
    async with asyncio.timeout(WAIT_S):
        first = asyncio.ensure_future(sweeper_.find("first"))
        await asyncio.to_thread(started.wait, WAIT_S)
        second = asyncio.ensure_future(sweeper_.find("second"))
        third = asyncio.ensure_future(sweeper_.find("third"))
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, second, third)
    assert passes == [frozenset({b"first"}), frozenset({b"second", b"third"})]
    assert sweeper_.scans == 2


async def test_sweep_catches_processes_forked_while_it_kills() -> None:
    marker = uuid.uuid4().hex
    # A marked process outside any group that keeps forking marked children.
    stray = await _marked_stray(marker, "while :; do sleep 30 & done")
    try:
        await eventually(lambda: len(find_marked_processes(marker)) > 3, "forks running")
        async with asyncio.timeout(WAIT_S):
            assert await sweep(marker) >= 1
            assert await stray.wait() == -signal.SIGKILL
        assert [p.pid for p in find_marked_processes(marker) if alive(p.pid)] == []
    finally:
        if stray.returncode is None:
            stray.kill()
            await stray.wait()
        process_module.kill_marked_processes(marker)


async def test_descendants_from_children_files_match_the_stat_scan() -> None:
    collector = Collector(b"ready\n")
    group = await spawn(
        ["/bin/sh", "-c", "sleep 30 & (sleep 30 & sleep 30 & wait) & echo ready; wait"], collector
    )
    try:
        async with asyncio.timeout(WAIT_S):
            await collector.seen.wait()
        await eventually(lambda: len(group.descendants()) >= 4, "tree up")
        via_children = {p.pid for p in process_module._descendants_procfs(group.pid)}
        via_stat = {p.pid for p in process_module._descendants_procfs_stat(group.pid)}
        assert via_children == via_stat
        assert len(via_children) >= 4
    finally:
        await group.terminate(grace_s=1.0)
        group.close()


async def test_output_pipes_are_widened() -> None:
    collector = Collector(b"x")
    group = await spawn(["/bin/sh", "-c", "cat >/dev/null"], collector, stdin=True)
    try:
        pipe = group._transport.get_pipe_transport(1)
        assert pipe is not None
        size = fcntl.fcntl(pipe.get_extra_info("pipe").fileno(), 1032)  # F_GETPIPE_SZ
        if size != PIPE_BYTES:
            pytest.skip(f"pipe size quota: {size}")
        assert pipe.max_size == PIPE_BYTES  # type: ignore[attr-defined]
    finally:
        await group.write_stdin(b"", eof=True)
        async with asyncio.timeout(WAIT_S):
            await group.wait()
        await group.kill_all()
        group.close()


def test_pid_floor_is_the_leader_while_no_wrap_is_possible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = {process_module._LAST_PID_FILE: b"5000\n", process_module._PID_MAX_FILE: b"4194304\n"}
    monkeypatch.setattr(process_module, "_read_proc_file", lambda path, size: files.get(path))
    now = process_module.time.monotonic()
    assert process_module.pid_floor(4000, now) == 4000
    # the allocator is below the leader again: it wrapped since the spawn
    assert process_module.pid_floor(6000, now) is None
    # long enough ago that even a million forks a second could have gone all the way round
    assert process_module.pid_floor(4000, now - 10.0) is None
    # a small pid_max wraps quickly: the same 10 ms is already too long
    files[process_module._PID_MAX_FILE] = b"32768\n"
    assert process_module.pid_floor(4000, now - 0.05) is None
    # unreadable: scan everything
    files.clear()
    assert process_module.pid_floor(4000, now) is None


async def test_a_sweep_with_a_floor_still_kills_what_started_after_the_leader() -> None:
    marker = uuid.uuid4().hex
    # an older process carrying the marker (pid below the floor) is, by the floor's premise,
    # not ours: only processes created after the leader are read
    older = await _marked_stray(marker)
    leader = await asyncio.create_subprocess_exec("true")
    await leader.wait()
    newer = await _marked_stray(marker)
    try:
        floor = process_module.pid_floor(leader.pid, process_module.time.monotonic())
        assert floor == leader.pid
        assert older.pid < floor < newer.pid  # pids are handed out in increasing order
        async with asyncio.timeout(WAIT_S):
            assert await sweep(marker, floor=floor) == 1
            assert await newer.wait() == -signal.SIGKILL
        assert older.returncode is None
    finally:
        for proc in (older, newer):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def test_scan_rereads_only_what_read_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    # An environ that reads empty may be a process in the middle of exec: read it again later.
    # One that cannot be read at all (gone, or another user's) is settled: never ours to find.
    from cc_executor.supervisor import process as process_module

    contents = {"101": b"", "102": None, "103": b"A=1\0" + MARKER_ENV.encode() + b"=m1\0"}
    monkeypatch.setattr(
        process_module,
        "_read_proc_file",
        lambda path, size: contents[path.split("/")[-2]],
    )
    unread: set[str] = set()
    found = process_module._scan_marked(frozenset({b"m1"}), ["101", "102", "103"], unread)
    assert found == {b"m1": [103]}
    assert unread == {"101"}
