"""Reading /proc for the sweep: the pid floor and mark, marker reads, empty and exiting reads."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from tests.polling import poll_until

from cc_executor.supervisor import procfs
from cc_executor.supervisor.procfs import MARKER_ENV


def test_pid_floor_is_the_leader_while_no_wrap_is_possible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = {procfs._LAST_PID_FILE: b"5000\n", procfs._PID_MAX_FILE: b"4194304\n"}
    monkeypatch.setattr(procfs, "_read_sysctl", files.get)
    now = procfs.time.monotonic()
    assert procfs.pid_floor(4000, now) == 4000
    # the allocator is below the leader again: it wrapped since the spawn
    assert procfs.pid_floor(6000, now) is None
    # long enough ago that even a million forks a second could have gone all the way round
    assert procfs.pid_floor(4000, now - 10.0) is None
    # a small pid_max wraps quickly: the same 10 ms is already too long
    files[procfs._PID_MAX_FILE] = b"32768\n"
    assert procfs.pid_floor(4000, now - 0.05) is None
    # unreadable: scan everything
    files.clear()
    assert procfs.pid_floor(4000, now) is None


def test_scan_rereads_only_what_read_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    # An environ that reads empty may be a process in the middle of exec: read it again later.
    # One that cannot be read at all (gone, or another user's) is settled: never ours to find.
    contents = {"101": b"", "102": None, "103": b"A=1\0" + MARKER_ENV.encode() + b"=m1\0"}
    monkeypatch.setattr(
        procfs,
        "_read_proc_file",
        lambda path, size: contents[path.split("/")[-2]],
    )
    unread: set[str] = set()
    found = procfs._scan_marked(frozenset({b"m1"}), ["101", "102", "103"], unread)
    assert found == {b"m1": [103]}
    assert unread == {"101"}


def test_a_kept_open_sysctl_file_reads_afresh() -> None:
    before = procfs.pid_mark()
    subprocess.run(["true"], check=True)  # takes a pid
    after = procfs.pid_mark()
    assert before is not None
    assert after is not None
    assert after.last_pid != before.last_pid
    assert procfs._read_sysctl("/proc/sys/kernel/no_such_file") is None


def test_a_pid_mark_is_stale_once_the_counter_could_have_wrapped() -> None:
    now = procfs.pid_mark()
    assert now is not None
    assert procfs.PidMark(now.last_pid, now.at - 1.0, 0.5).unchanged() is False
    assert procfs.PidMark(now.last_pid - 1, now.at, 10.0).unchanged() is False


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
        102: _stat(102, "S", procfs._PF_KTHREAD),
        103: _stat(103, "R", procfs._PF_EXITING),
        104: _stat(104, "R", 0),
    }
    for pid, line in stats.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_bytes(line)
    monkeypatch.setattr(procfs, "_PROC", str(tmp_path))
    assert procfs.unsettled(frozenset({"104"})) == (False, [103])
    assert procfs.unsettled(frozenset()) == (True, [103])


def test_an_exiting_process_whose_environ_is_gone_is_left_to_wait_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed with its group, a process loses its memory (environ unreadable) and closes its
    # pipes before it is a zombie. A failed read is settled for another user's process, but an
    # exiting one goes to `unread`, so the sweep waits for it rather than reporting it gone.
    for pid, line in {
        105: _stat(105, "R", procfs._PF_EXITING),
        106: _stat(106, "S", 0),
    }.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_bytes(line)  # no environ file: the read fails
    monkeypatch.setattr(procfs, "_PROC", str(tmp_path))
    unread: set[str] = set()
    assert procfs._scan_marked(frozenset({b"m1"}), ["105", "106"], unread) == {}
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
    monkeypatch.setattr(procfs, "_PROC", str(tmp_path))
    last = 104
    monkeypatch.setattr(procfs, "pid_mark", lambda: procfs.PidMark(last, time.monotonic(), 10.0))
    listings: list[str] = []
    real_listdir = os.listdir

    def listdir(path: str) -> list[str]:
        listings.append(path)
        return real_listdir(path)

    monkeypatch.setattr(procfs.os, "listdir", listdir)
    found, settled, mark = procfs.scan_all(frozenset({b"m1"}), floor=100)
    assert found == {b"m1": [103]}
    assert settled == {"101", "102", "103", "104"}  # 102 and 104 do not exist: nothing to find
    assert mark is not None
    assert listings == []
    last = 100 + procfs.RANGE_PROBE_MAX + 1
    found, _, _ = procfs.scan_all(frozenset({b"m1"}), floor=100)
    assert found == {b"m1": [103]}
    assert listings == [str(tmp_path)]


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


async def test_a_member_of_a_known_group_is_found_without_its_marker() -> None:
    # A process in the group of a live leader is that execution's even after clearing its
    # environment: the pass asks its group (getpgid) instead of reading its environ.
    leader = await asyncio.create_subprocess_exec(
        "sh", "-c", "env -i sleep 30 & wait", start_new_session=True
    )
    try:
        me = psutil.Process(leader.pid)
        await poll_until(lambda: bool(me.children()), timeout=10, what="the sleep")
        child = me.children()[0].pid
        await poll_until(
            lambda: b"sleep" in _read(f"/proc/{child}/cmdline"),
            timeout=10,
            what="the exec of env -i",
        )
        assert MARKER_ENV.encode() not in _read(f"/proc/{child}/environ")
        key = frozenset({b"m-group"})
        assert procfs._scan_marked(key, [str(child)], leaders={}) == {}
        procfs.leader_spawned(leader.pid, "m-group")
        try:
            found = procfs._scan_marked(key, [str(child)], leaders=procfs.LEADERS)
        finally:
            procfs.leader_gone(leader.pid)
        assert found == {b"m-group": [child]}
        # Another leader's group tells nothing about this one.
        other = procfs._scan_marked(key, [str(child)], leaders={os.getpid(): b"m-group"})
        assert other == {}
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        await leader.wait()
