"""The sweep on its own: finding processes by the environment marker, one shared /proc pass for
sweeps that ask together, rounds that catch forks, and the pid floor that bounds the scan."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest
from tests.polling import poll_until
from tests.supervisor.probes import WAIT_S, alive, eventually

from cc_executor.supervisor import procfs
from cc_executor.supervisor import sweep as sweep_module
from cc_executor.supervisor.procfs import MARKER_ENV, find_marked_processes
from cc_executor.supervisor.sweep import Sweeper, sweep, sweeper


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
    real_scan = procfs.scan_all

    def slow_scan(
        markers: frozenset[bytes],
        floor: int | None = None,
        leaders: Mapping[int, bytes] | None = None,
        mark: procfs.PidMark | None = None,
    ) -> procfs.Listing:
        passes.append(markers)
        started.set()
        release.wait(WAIT_S)
        return real_scan(markers, floor, leaders, mark)

    monkeypatch.setattr(procfs, "scan_all", slow_scan)
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
        sweep_module.kill_marked_processes(marker)


async def test_a_sweep_with_a_floor_still_kills_what_started_after_the_leader() -> None:
    marker = uuid.uuid4().hex
    # an older process carrying the marker (pid below the floor) is, by the floor's premise,
    # not ours: only processes created after the leader are read
    older = await _marked_stray(marker)
    leader = await asyncio.create_subprocess_exec("true")
    await leader.wait()
    newer = await _marked_stray(marker)
    try:
        floor = procfs.pid_floor(leader.pid, procfs.time.monotonic())
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


async def test_a_lone_sweep_scans_on_the_loop_while_passes_are_cheap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    threads: list[object] = []
    real = loop.run_in_executor

    def counting(executor: object, fn: object, *args: object) -> object:
        threads.append(fn)
        return real(None, fn, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "run_in_executor", counting)
    # However busy this machine is: here every pass counts as cheap...
    monkeypatch.setattr(Sweeper, "INLINE_PASS_MAX_S", 60.0)
    sweeper_ = Sweeper()
    leader = await asyncio.create_subprocess_exec("true")
    await leader.wait()
    # As the supervisor asks: only processes created after a just-finished leader are read.
    floor = procfs.pid_floor(leader.pid, time.monotonic())
    async with asyncio.timeout(WAIT_S):
        for _ in range(3):  # a steady stream of executions, one finishing after another
            await sweeper_.find(uuid.uuid4().hex, floor)
        assert threads == []  # the ~0.5 ms thread hop is not on their way to completion
        # ...and then every pass counts as expensive (a huge process table): to the thread.
        monkeypatch.setattr(Sweeper, "INLINE_PASS_MAX_S", 0.0)
        await sweeper_.find(uuid.uuid4().hex)
        await sweeper_.find(uuid.uuid4().hex)
    assert len(threads) == 2
    assert sweeper_.scans == 5


@pytest.mark.parametrize(("moves", "rounds_after_scan"), [(False, 0), (True, 1)])
async def test_a_sweep_stops_after_one_pass_when_no_pid_was_handed_out_since(
    monkeypatch: pytest.MonkeyPatch, moves: bool, rounds_after_scan: int
) -> None:
    # The kernel's pid counter did not move since the pass listed /proc, and the pass read every
    # candidate: no process can be left to find, so the sweep ends without a second look.
    counter = iter(range(1000, 2000))

    def mark() -> procfs.PidMark:
        last = next(counter) if moves else 1000
        return procfs.PidMark(last, time.monotonic(), 10.0)

    looked: list[frozenset[str]] = []

    def unsettled(listed: frozenset[str], floor: int | None = None) -> tuple[bool, list[int]]:
        looked.append(listed)
        return False, []

    monkeypatch.setattr(procfs, "pid_mark", mark)
    monkeypatch.setattr(procfs, "unsettled", unsettled)
    leader = await asyncio.create_subprocess_exec("true")
    await leader.wait()
    floor = procfs.pid_floor(leader.pid, time.monotonic())
    async with asyncio.timeout(WAIT_S):
        assert await sweep(uuid.uuid4().hex, floor=floor) == 0
    assert len(looked) == rounds_after_scan


async def test_no_scan_at_all_when_no_pid_was_handed_out_after_the_leader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The counter still stands at the leader's pid: the leader forked nothing and nothing can
    # carry its marker, so the sweep does not even list /proc.
    def no_pass(*args: object) -> object:
        raise AssertionError("scanned /proc")

    monkeypatch.setattr(sweep_module, "_timed_scan_all", no_pass)
    monkeypatch.setattr(procfs, "pid_mark", lambda: procfs.PidMark(4242, time.monotonic(), 10.0))
    async with asyncio.timeout(WAIT_S):
        assert await sweep(uuid.uuid4().hex, floor=4242) == 0
        # A snapshot to kill, or a counter past the floor, and the sweep looks as before.
        with pytest.raises(AssertionError, match="scanned"):
            await sweep(uuid.uuid4().hex, floor=4241)


async def test_pinned_processes_are_killed_by_their_pidfd_even_without_a_marker() -> None:
    # The tree snapshot of a cancel is pinned: a process in it that carries no marker (it
    # cleared its environment) is still killed by the sweep, and waited for.
    proc = await asyncio.create_subprocess_exec("env", "-i", "sleep", "30")
    try:
        await poll_until(lambda: _exe(proc.pid) == "sleep", timeout=WAIT_S, what="exec'd sleep")
        pinned = sweep_module.Pinned([proc.pid])
        async with asyncio.timeout(WAIT_S):
            assert await sweep(uuid.uuid4().hex, pinned=pinned) == 1
            assert await proc.wait() == -signal.SIGKILL
        assert pinned.take() == ({}, [])  # the sweep took the pidfds over (and closed them)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _exe(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def test_an_early_pass_counts_the_walked_tree_as_found_without_reading_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The tree a cancel just walked is the execution's own whatever its environ says: the early
    # pass counts it as found and reads only the other pids above the floor.
    read: list[str] = []

    def reading(path: str, size: int) -> bytes | None:
        read.append(path)
        return None

    monkeypatch.setattr(procfs, "_read_proc_file", reading)
    monkeypatch.setattr(procfs, "pid_mark", lambda: procfs.PidMark(105, 0.0, 10.0))
    # The other pids exist and are in no group of ours (pgid 1): their environ must be read.
    monkeypatch.setattr(procfs.os, "getpgid", lambda pid: 1)
    found = Sweeper().pass_now("m1", floor=100, ours=[101, 103])
    assert found is not None
    assert sorted(found[0]) == [101, 103]
    environs = sorted(path.split("/")[-2] for path in read if path.endswith("/environ"))
    assert environs == ["102", "104", "105"]


def _gone_and_slow() -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    return subprocess.Popen(["true"]), subprocess.Popen(["sleep", "0.5"])


async def test_waiting_for_the_last_of_several_processes_costs_no_cpu() -> None:
    # One process is gone (a zombie: its pidfd reads ready from then on), the other takes a
    # while: the wait must sleep until then, not call back on every loop turn.
    gone, slow = _gone_and_slow()
    fds = [os.pidfd_open(gone.pid), os.pidfd_open(slow.pid)]
    try:
        ready, _, _ = select.select([fds[0]], [], [], WAIT_S)
        assert ready  # `true` has exited
        cpu0, wall0 = time.thread_time(), time.monotonic()
        await sweep_module._wait_pidfds(list(fds), WAIT_S)
        cpu, wall = time.thread_time() - cpu0, time.monotonic() - wall0
        assert wall >= 0.3  # it did wait for `sleep`
        assert cpu < 0.1, f"{cpu:.3f}s of CPU while waiting {wall:.3f}s"
        assert slow.poll() is not None or slow.wait(WAIT_S) == 0
    finally:
        for proc in (gone, slow):
            proc.kill()
            proc.wait()
