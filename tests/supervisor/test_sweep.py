"""The sweep on its own: finding processes by the environment marker, one shared /proc pass for
sweeps that ask together, rounds that catch forks, and the pid floor that bounds the scan."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest
from tests.polling import poll_until
from tests.supervisor.probes import WAIT_S, alive, eventually

from cc_executor.supervisor import sweep as sweep_module
from cc_executor.supervisor.sweep import (
    MARKER_ENV,
    Sweeper,
    find_marked_processes,
    sweep,
    sweeper,
)


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
    real_scan = sweep_module._scan_all

    def slow_scan(
        markers: frozenset[bytes],
        floor: int | None = None,
        leaders: Mapping[int, bytes] | None = None,
        mark: sweep_module._PidMark | None = None,
    ) -> sweep_module._Listing:
        passes.append(markers)
        started.set()
        release.wait(WAIT_S)
        return real_scan(markers, floor, leaders, mark)

    monkeypatch.setattr(sweep_module, "_scan_all", slow_scan)
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


def test_pid_floor_is_the_leader_while_no_wrap_is_possible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = {sweep_module._LAST_PID_FILE: b"5000\n", sweep_module._PID_MAX_FILE: b"4194304\n"}
    monkeypatch.setattr(sweep_module, "_read_proc_file", lambda path, size: files.get(path))
    now = sweep_module.time.monotonic()
    assert sweep_module.pid_floor(4000, now) == 4000
    # the allocator is below the leader again: it wrapped since the spawn
    assert sweep_module.pid_floor(6000, now) is None
    # long enough ago that even a million forks a second could have gone all the way round
    assert sweep_module.pid_floor(4000, now - 10.0) is None
    # a small pid_max wraps quickly: the same 10 ms is already too long
    files[sweep_module._PID_MAX_FILE] = b"32768\n"
    assert sweep_module.pid_floor(4000, now - 0.05) is None
    # unreadable: scan everything
    files.clear()
    assert sweep_module.pid_floor(4000, now) is None


async def test_a_sweep_with_a_floor_still_kills_what_started_after_the_leader() -> None:
    marker = uuid.uuid4().hex
    # an older process carrying the marker (pid below the floor) is, by the floor's premise,
    # not ours: only processes created after the leader are read
    older = await _marked_stray(marker)
    leader = await asyncio.create_subprocess_exec("true")
    await leader.wait()
    newer = await _marked_stray(marker)
    try:
        floor = sweep_module.pid_floor(leader.pid, sweep_module.time.monotonic())
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
    contents = {"101": b"", "102": None, "103": b"A=1\0" + MARKER_ENV.encode() + b"=m1\0"}
    monkeypatch.setattr(
        sweep_module,
        "_read_proc_file",
        lambda path, size: contents[path.split("/")[-2]],
    )
    unread: set[str] = set()
    found = sweep_module._scan_marked(frozenset({b"m1"}), ["101", "102", "103"], unread)
    assert found == {b"m1": [103]}
    assert unread == {"101"}


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
    floor = sweep_module.pid_floor(leader.pid, time.monotonic())
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

    def mark() -> sweep_module._PidMark:
        last = next(counter) if moves else 1000
        return sweep_module._PidMark(last, time.monotonic(), 10.0)

    looked: list[frozenset[str]] = []

    def unsettled(listed: frozenset[str], floor: int | None = None) -> tuple[bool, list[int]]:
        looked.append(listed)
        return False, []

    monkeypatch.setattr(sweep_module, "_pid_mark", mark)
    monkeypatch.setattr(sweep_module, "_unsettled", unsettled)
    leader = await asyncio.create_subprocess_exec("true")
    await leader.wait()
    floor = sweep_module.pid_floor(leader.pid, time.monotonic())
    async with asyncio.timeout(WAIT_S):
        assert await sweep(uuid.uuid4().hex, floor=floor) == 0
    assert len(looked) == rounds_after_scan


def test_a_pid_mark_is_stale_once_the_counter_could_have_wrapped() -> None:
    now = sweep_module._pid_mark()
    assert now is not None
    assert sweep_module._PidMark(now.last_pid, now.at - 1.0, 0.5).unchanged() is False
    assert sweep_module._PidMark(now.last_pid - 1, now.at, 10.0).unchanged() is False


async def test_no_scan_at_all_when_no_pid_was_handed_out_after_the_leader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The counter still stands at the leader's pid: the leader forked nothing and nothing can
    # carry its marker, so the sweep does not even list /proc.
    def no_pass(*args: object) -> object:
        raise AssertionError("scanned /proc")

    monkeypatch.setattr(sweep_module, "_timed_scan_all", no_pass)
    monkeypatch.setattr(
        sweep_module, "_pid_mark", lambda: sweep_module._PidMark(4242, time.monotonic(), 10.0)
    )
    async with asyncio.timeout(WAIT_S):
        assert await sweep(uuid.uuid4().hex, floor=4242) == 0
        # A snapshot to kill, or a counter past the floor, and the sweep looks as before.
        with pytest.raises(AssertionError, match="scanned"):
            await sweep(uuid.uuid4().hex, floor=4241)


def _stat(pid: int, state: str, flags: int) -> bytes:
    return f"{pid} (name with) spaces) {state} 1 {pid} {pid} 0 -1 {flags} 0 0 0 0\n".encode()


def test_unread_processes_are_told_apart_by_their_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What read an empty environ: a zombie and a kernel thread are settled for good, a process
    # in the middle of exiting is only waited for (it closes its pipes before it is a zombie),
    # anything else (a process mid-exec) is read again.
    stats = {
        101: _stat(101, "Z", 0),
        102: _stat(102, "S", sweep_module._PF_KTHREAD),
        103: _stat(103, "R", sweep_module._PF_EXITING),
        104: _stat(104, "R", 0),
    }
    for pid, line in stats.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_bytes(line)
    monkeypatch.setattr(sweep_module, "_PROC", str(tmp_path))
    assert sweep_module._unsettled(frozenset({"104"})) == (False, [103])
    assert sweep_module._unsettled(frozenset()) == (True, [103])


def test_an_exiting_process_whose_environ_is_gone_is_left_to_wait_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed with its group, a process loses its memory (environ unreadable) and closes its
    # pipes before it is a zombie. A failed read is settled for another user's process, but an
    # exiting one goes to `unread`, so the sweep waits for it rather than reporting it gone.
    for pid, line in {
        105: _stat(105, "R", sweep_module._PF_EXITING),
        106: _stat(106, "S", 0),
    }.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_bytes(line)  # no environ file: the read fails
    monkeypatch.setattr(sweep_module, "_PROC", str(tmp_path))
    unread: set[str] = set()
    assert sweep_module._scan_marked(frozenset({b"m1"}), ["105", "106"], unread) == {}
    assert unread == {"105"}


def test_a_pass_just_above_its_floor_opens_each_new_pid_instead_of_listing_proc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Few pids were handed out since the floor: each is opened directly (a missing one fails at
    # once) and /proc is not listed. Far above the floor, /proc is listed as before.
    for pid, environ in {
        101: b"A=1\0",
        103: b"\0".join([b"B=2", MARKER_ENV.encode() + b"=m1"]),
    }.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "environ").write_bytes(environ)
    monkeypatch.setattr(sweep_module, "_PROC", str(tmp_path))
    last = 104
    monkeypatch.setattr(
        sweep_module, "_pid_mark", lambda: sweep_module._PidMark(last, time.monotonic(), 10.0)
    )
    listings: list[str] = []
    real_listdir = os.listdir

    def listdir(path: str) -> list[str]:
        listings.append(path)
        return real_listdir(path)

    monkeypatch.setattr(sweep_module.os, "listdir", listdir)
    found, settled, mark = sweep_module._scan_all(frozenset({b"m1"}), floor=100)
    assert found == {b"m1": [103]}
    assert settled == {"101", "102", "103", "104"}  # 102 and 104 do not exist: nothing to find
    assert mark is not None
    assert listings == []
    last = 100 + sweep_module.RANGE_PROBE_MAX + 1
    found, _, _ = sweep_module._scan_all(frozenset({b"m1"}), floor=100)
    assert found == {b"m1": [103]}
    assert listings == [str(tmp_path)]


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

    monkeypatch.setattr(sweep_module, "_read_proc_file", reading)
    monkeypatch.setattr(sweep_module, "_pid_mark", lambda: sweep_module._PidMark(105, 0.0, 10.0))
    found = Sweeper().pass_now("m1", floor=100, ours=[101, 103])
    assert found is not None
    assert sorted(found[0]) == [101, 103]
    environs = sorted(path.split("/")[-2] for path in read if path.endswith("/environ"))
    assert environs == ["102", "104", "105"]
