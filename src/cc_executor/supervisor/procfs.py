"""Reading ``/proc`` for the sweep: the environment marker, the pid counter, process trees.

Owns: the marker (``CC_EXECUTOR_EXECUTION_ID=<id>``, inherited by every descendant unless it
clears its environment) and reading it from ``/proc/<pid>/environ`` (one raw read per process,
any number of markers per pass), the kernel's pid counter and the floor it gives (:func:`pid_floor`:
no process of an execution can be older than its leader), the registry of live leaders (their
marker is known without a read), and walks of a process tree. Reads only: signalling and waiting
are ``sweep.py``'s, shared passes too (:class:`~cc_executor.supervisor.sweep.Sweeper`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import psutil

__all__ = [
    "HAS_PROC",
    "LEADERS",
    "MARKER_ENV",
    "RANGE_PROBE_MAX",
    "Found",
    "Listing",
    "PidMark",
    "descendant_pids",
    "descendants",
    "find_marked_processes",
    "floor_and_mark",
    "forked_since",
    "leader_gone",
    "leader_spawned",
    "pid_floor",
    "pid_mark",
    "processes",
    "rescan",
    "scan_all",
    "unsettled",
]

MARKER_ENV = "CC_EXECUTOR_EXECUTION_ID"  # inherited by every descendant unless it clears its env

_PROC = "/proc"
HAS_PROC = os.path.exists(f"{_PROC}/self/environ")
_ENVIRON_READ = 64 * 1024  # one read holds any ordinary environment
_STAT_READ = 4096  # a /proc/<pid>/stat line is a few hundred bytes
_MARKER_PREFIX = b"\0" + MARKER_ENV.encode() + b"="
_HAS_CHILDREN_FILES = os.path.exists(f"{_PROC}/self/task/{os.getpid()}/children")
_LAST_PID_FILE = f"{_PROC}/sys/kernel/ns_last_pid"
_PID_MAX_FILE = f"{_PROC}/sys/kernel/pid_max"
# Far above what Linux sustains (tens of thousands of forks a second on large machines): bounds
# how fast the pid allocator could go all the way round since a spawn.
MAX_FORKS_PER_S = 1_000_000
_RESERVED_PIDS = 300  # the allocator restarts here after wrapping at pid_max
# A pass above a pid floor opens each pid handed out since (instead of listing /proc) while
# there are at most this many: a missing pid fails its open in a few us.
RANGE_PROBE_MAX = 32
# PF_KTHREAD in the flags field (9th) of /proc/<pid>/stat: a kernel thread. It has no user memory,
# so its environ always reads empty; it can never carry a marker nor descend from a child.
_PF_KTHREAD = 0x00200000
_PF_EXITING = 0x00000004  # PF_EXITING: the process is in do_exit (its memory may be gone already)


# Live leaders this process spawned, pid -> the marker it was given. A sweep need not read their
# environ: a leader is the execution it was spawned for, whatever its environ says now, and while
# it is unreaped its pid cannot be reused. With many executions alive (200 `sleep 1` ending one by
# one), nearly every process a pass would read is such a leader: reading them made each pass cost
# O(live executions) environ reads (measured: a fifth of the daemon's CPU in that benchmark).
LEADERS: dict[int, bytes] = {}


def leader_spawned(pid: int, marker: str) -> None:
    """Record a leader spawned with ``marker`` (until :func:`leader_gone`)."""
    LEADERS[pid] = os.fsencode(marker)


def leader_gone(pid: int) -> None:
    """The leader was reaped (its pid may be handed out again): forget it. Idempotent."""
    LEADERS.pop(pid, None)


def descendants(pid: int) -> list[psutil.Process]:
    """A snapshot of ``pid``'s process tree (empty once it is gone)."""
    return processes(descendant_pids(pid))


def descendant_pids(pid: int) -> list[int]:
    """The pids of ``pid``'s process tree now (empty once it is gone); no psutil object each."""
    if HAS_PROC:
        return _descendants_procfs(pid)
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def pid_floor(leader_pid: int, spawned_at: float) -> int | None:
    """A pid at or below which no process created after the leader can be, else ``None``.

    Linux hands out pids in increasing order, wrapping at ``pid_max``. Every descendant of the
    leader (and any process that could carry its marker) was created after it, so while the
    allocator has not wrapped since the spawn, all of them have pids above the leader's and a
    sweep need not read the environ of any process at or below it. Wrapping is ruled out when the
    last pid handed out is still above the leader's and too little time has passed to go all the
    way round (``MAX_FORKS_PER_S``); otherwise, or when the files cannot be read, ``None``: scan
    everything.
    """
    return floor_and_mark(leader_pid, spawned_at)[0]


def floor_and_mark(leader_pid: int, spawned_at: float) -> tuple[int | None, PidMark | None]:
    """:func:`pid_floor`, and the pid mark it was read from (one read for both)."""
    mark = pid_mark()
    if mark is None or mark.last_pid < leader_pid:
        return None, mark  # unreadable, or wrapped since the spawn
    if mark.at - spawned_at >= mark.wrap_s:
        return None, mark  # could have wrapped all the way round
    return leader_pid, mark


def forked_since(floor: int | None, mark: PidMark | None) -> bool:
    """False only when no pid was handed out since the leader's (``floor``): nothing was
    created after it, so it has no descendant and nothing can carry its marker."""
    return floor is None or mark is None or mark.last_pid != floor


def find_marked_processes(marker: str) -> list[psutil.Process]:
    """Every live process whose environment carries ``MARKER_ENV=marker`` (never this process)."""
    if HAS_PROC:
        key = os.fsencode(marker)
        marked = _scan_marked(frozenset((key,)), os.listdir(_PROC), leaders=LEADERS)
        return processes(marked.get(key, ()))
    me = os.getpid()
    found: list[psutil.Process] = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            env = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # gone, zombie, or not ours to read
            continue
        if env.get(MARKER_ENV) == marker:
            found.append(proc)
    return found


def processes(pids: Iterable[int]) -> list[psutil.Process]:
    found: list[psutil.Process] = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return found


def _read_proc_file(path: str, size: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # gone, or not ours to read
        return None
    try:
        data = os.read(fd, size)
        while len(data) % size == 0 and data:  # a (rare) file larger than one read
            more = os.read(fd, size)
            if not more:
                break
            data += more
    except OSError:  # EACCES (another user's), ESRCH (gone meanwhile)
        return None
    finally:
        os.close(fd)
    return data


def _scan_marked(
    markers: frozenset[bytes],
    names: Iterable[str],
    unread: set[str] | None = None,
    *,
    leaders: Mapping[int, bytes] | None = None,
) -> dict[bytes, list[int]]:
    """``marker -> pids`` for the processes among ``names`` (``/proc`` entries) carrying one.

    One pass serves any number of markers: each ``/proc/<pid>/environ`` is read raw once and its
    ``MARKER_ENV`` value looked up in ``markers`` (psutil's per-process objects and environ
    parsing cost about 5x more). A zombie's environ reads as empty: never matched. So does a
    process caught in the middle of ``exec`` (its old memory is gone, the new not yet readable):
    the names whose environ read empty are added to ``unread`` so a later round reads them again.
    ``leaders`` (a snapshot of the live leaders, pid -> marker; a pass may add the tree it just
    walked) are not read: their marker is known. Nor are the members of their process groups
    (one ``getpgid`` instead of reading an environ, which for a process that is exiting costs
    several times more): a group's id is not handed out again while any member is alive, and a
    process can only join a group of its own session, which the leader's ``setsid`` made, so
    every member descends from the process the group is named after. Safe to run in a worker
    thread (it only reads ``/proc``).
    """
    me = os.getpid()
    found: dict[bytes, list[int]] = {}
    for name in names:
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == me:
            continue
        if leaders is not None:
            known = leaders.get(pid) or _group_marker(pid, leaders)
            if known is not None:
                if known in markers:
                    found.setdefault(known, []).append(pid)
                continue
        data = _read_proc_file(f"{_PROC}/{name}/environ", _ENVIRON_READ)
        if data is None:
            # Gone, or another user's (EACCES): never one we could find by marker. Or in the
            # middle of exiting (its memory is gone): then it is left for unsettled to wait for.
            if unread is not None and _exiting(name):
                unread.add(name)
            continue
        if not data:
            if unread is not None:
                unread.add(name)  # empty: a zombie, a kernel thread, or a process mid-exec
            continue
        value = _marker_in(data, markers)
        if value is not None:
            found.setdefault(value, []).append(pid)
    return found


def _group_marker(pid: int, leaders: Mapping[int, bytes]) -> bytes | None:
    """The marker of the known process whose group ``pid`` is in, if any (see
    :func:`_scan_marked`)."""
    if not leaders:
        return None
    try:
        return leaders.get(os.getpgid(pid))
    except OSError:  # gone meanwhile: its environ read says so
        return None


def _marker_in(environ: bytes, markers: frozenset[bytes]) -> bytes | None:
    """The value of the first ``MARKER_ENV`` entry of a raw environ that is one of ``markers``."""
    prefix = _MARKER_PREFIX
    data = b"\0" + environ
    start = data.find(prefix)
    while start >= 0:
        value_start = start + len(prefix)
        value_end = data.find(b"\0", value_start)
        if value_end < 0:
            value_end = len(data)
        value = data[value_start:value_end]
        if value in markers:
            return value
        start = data.find(prefix, value_end)
    return None


@dataclass(frozen=True, slots=True)
class PidMark:
    """The kernel's last handed-out pid just before a ``/proc`` listing (see :func:`pid_mark`)."""

    last_pid: int
    at: float  # monotonic time of the read
    wrap_s: float  # the allocator needs at least this long to go all the way round

    def unchanged(self) -> bool:
        """True when no process (nor thread) was created since: a sweep round that read every
        candidate of its listing then has nothing left to find."""
        if time.monotonic() - self.at >= self.wrap_s:
            return False
        mark = pid_mark()
        return mark is not None and mark.last_pid == self.last_pid


# Descriptors kept open on the two sysctl files every pid mark reads: a read at offset 0 formats
# the value afresh, so one pread replaces open, read and close (~1 us instead of ~6 us; a cancel
# reads a mark three times). Opened on first use, close-on-exec, shared by every thread.
_SYSCTL_FDS: dict[str, int] = {}
_SYSCTL_LOCK = threading.Lock()


def _read_sysctl(path: str) -> bytes | None:
    fd = _SYSCTL_FDS.get(path)
    if fd is None:
        with _SYSCTL_LOCK:
            fd = _SYSCTL_FDS.get(path)
            if fd is None:
                try:
                    fd = _SYSCTL_FDS[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError:  # no such file (not Linux, or /proc not mounted)
                    return None
    try:
        return os.pread(fd, 64, 0)
    except OSError:
        return None


def pid_mark() -> PidMark | None:
    try:
        last_pid = int(_read_sysctl(_LAST_PID_FILE) or b"")
        pid_max = int(_read_sysctl(_PID_MAX_FILE) or b"")
    except ValueError:
        return None
    return PidMark(last_pid, time.monotonic(), (pid_max - _RESERVED_PIDS) / MAX_FORKS_PER_S)


Listing = tuple[dict[bytes, list[int]], frozenset[str], PidMark | None]
"""A pass: marked pids, the ``/proc`` entries it settled, and its pid mark (``None`` unless it
read every candidate)."""


def scan_all(
    markers: frozenset[bytes],
    floor: int | None = None,
    leaders: Mapping[int, bytes] | None = None,
    mark: PidMark | None = None,
) -> Listing:
    """The marked pids, and the pid entries above ``floor`` this pass settled (read and not
    empty). Those at or below it were created before every leader asked about (see
    :func:`pid_floor`): every later round skips them too (``rescan``, ``unsettled``).

    The candidates are :func:`_pid_names`: with a floor and few pids handed out since it, each
    of them is opened directly instead of listing ``/proc``. ``mark``: the pid mark, if the
    caller read one just before (it must come before the listing: whatever comes after it
    moves the counter).
    """
    if mark is None:
        mark = pid_mark()
    candidates = _pid_names(floor, mark)
    unread: set[str] = set()
    found = _scan_marked(markers, candidates, unread, leaders=leaders)
    return found, candidates - unread, None if unread else mark


Found = tuple[list[int], frozenset[str], PidMark | None]
"""A pass as one sweep sees it: its marked pids, the entries it settled, its pid mark."""


def _descendants_procfs(pid: int) -> list[int]:
    # Walks /proc/<pid>/task/<tid>/children from the leader: a handful of reads for a small tree
    # instead of one stat per process on the machine (~0.1 ms instead of ~2.5 ms). It runs on the
    # cancel path before the group is killed.
    if not _HAS_CHILDREN_FILES:
        return _descendants_procfs_stat(pid)
    found: list[int] = []
    seen = {pid}
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tids = _threads(parent)
        except OSError:  # gone meanwhile
            continue
        for tid in tids:
            data = _read_proc_file(f"{_PROC}/{parent}/task/{tid}/children", _STAT_READ)
            if not data:
                continue
            for field in data.split():
                child = int(field)
                if child not in seen:
                    seen.add(child)
                    found.append(child)
                    todo.append(child)
    return found


def _threads(pid: int) -> list[str]:
    """The thread ids of ``pid`` (a child may have been forked by any of them).

    ``/proc/<pid>/task`` has 2 + threads links: one ``stat`` tells a single-threaded process
    (nearly every member of a tree: shells, ``sleep``) apart without listing the directory
    (three system calls). Any other count, however odd, is listed.
    """
    task = f"{_PROC}/{pid}/task"
    if os.stat(task).st_nlink == 3:
        return [str(pid)]
    return os.listdir(task)


def _descendants_procfs_stat(pid: int) -> list[int]:
    # Without CONFIG_PROC_CHILDREN: build the ppid map from every /proc/<pid>/stat, read raw
    # (psutil's children(recursive=True) does the same through Python file objects, ~2x slower).
    children: dict[int, list[int]] = {}
    for name in os.listdir(_PROC):
        if not name.isdigit():
            continue
        stat = _read_proc_file(f"{_PROC}/{name}/stat", _STAT_READ)
        if not stat:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and ")", so split after the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split(b" ", 2)
        if len(fields) < 2:
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    found: list[int] = []
    todo = list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        todo.extend(children.get(child, ()))
        found.append(child)
    return found


def rescan(marker: str, listed: frozenset[str], floor: int | None) -> Found:
    """A later round: read what ``/proc`` holds now that the passes so far did not settle."""
    mark = pid_mark()
    names = _pid_names(floor, mark)
    key = os.fsencode(marker)
    unread: set[str] = set()
    found = _scan_marked(frozenset((key,)), names - listed, unread, leaders=LEADERS)
    return found.get(key, []), (names | listed) - unread, None if unread else mark


def _pid_names(floor: int | None, mark: PidMark | None) -> frozenset[str]:
    """Every pid above ``floor`` that may exist now (``mark`` read just before): the range up
    to the last pid handed out while it is short (see :func:`scan_all`), else a listing."""
    if floor is not None and mark is not None and floor <= mark.last_pid <= floor + RANGE_PROBE_MAX:
        return frozenset(str(pid) for pid in range(floor + 1, mark.last_pid + 1))
    return frozenset(_above(os.listdir(_PROC), floor))


def _above(names: Iterable[str], floor: int | None) -> list[str]:
    """The pid entries among ``names`` above ``floor`` (all of them without one)."""
    if floor is None:
        return [name for name in names if name.isdigit()]
    return [name for name in names if name.isdigit() and int(name) > floor]


def unsettled(listed: frozenset[str], floor: int | None = None) -> tuple[bool, list[int]]:
    """Whether a live process was not read by the passes so far, and the pids of the exiting
    ones among those not read (to wait for, not to read again).

    A process caught in the middle of ``exec`` reads an empty environ: it may still carry the
    marker once exec is done, so the sweep reads it again instead of declaring the tree gone.
    Zombies read empty forever and run no code: they are settled. So does a process in the
    middle of exiting, which can no longer fork nor gain a marker: it is only waited for.
    """
    me = str(os.getpid())
    unsettled = False
    exiting: list[int] = []
    for name in _pid_names(floor, pid_mark()):
        if name in listed or name == me:
            continue
        stat = _read_proc_file(f"{_PROC}/{name}/stat", _STAT_READ)
        if stat is None:
            continue  # gone
        kind = _stat_kind(stat)
        if kind == "exiting":
            exiting.append(int(name))
        elif kind == "running":
            unsettled = True
    return unsettled, exiting


def _stat_kind(stat: bytes) -> Literal["settled", "exiting", "running"]:
    """What a ``/proc/<pid>/stat`` line says for the sweep: ``settled`` for a zombie or a kernel
    thread (for good), ``exiting`` for a process past ``PF_EXITING``, else ``running``.

    Kernel threads (``kworker``s come and go all the time, with fresh pids above any floor) read
    an empty environ forever; without this check every sweep ran all ``SWEEP_MAX_ROUNDS`` rounds
    waiting for them to "finish exec" (measured: ~0.4 ms per cancel).
    """
    # "pid (comm) state ppid pgrp session tty_nr tpgid flags ...": comm may hold spaces and ")".
    fields = stat[stat.rfind(b")") + 2 :].split(b" ", 7)
    if fields[0] == b"Z":
        return "settled"
    try:
        flags = int(fields[6]) if len(fields) > 6 else 0
    except ValueError:
        return "running"
    if flags & _PF_KTHREAD:
        return "settled"
    return "exiting" if flags & _PF_EXITING else "running"


def _exiting(name: str) -> bool:
    stat = _read_proc_file(f"{_PROC}/{name}/stat", _STAT_READ)
    return stat is not None and _stat_kind(stat) == "exiting"
