"""Finding and killing an execution's escaped descendants: the environment marker and the sweep.

Owns: the marker (``CC_EXECUTOR_EXECUTION_ID=<id>``, inherited by every descendant unless it
clears its environment), reading ``/proc`` for it (one raw pass shared by every sweep asking at
the same time, :class:`Sweeper`), snapshots of a process tree, and SIGKILL + wait for what was
found (pidfds where the kernel has them). Does not own: the process group itself, its signals or
its pipes (``process.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import psutil
from loguru import logger

from cc_executor.supervisor.looplocal import loop_local

__all__ = [
    "MARKER_ENV",
    "SWEEP_MAX_ROUNDS",
    "SWEEP_WAIT_S",
    "EarlyPass",
    "Pinned",
    "Sweeper",
    "descendant_pids",
    "descendants",
    "early_pass",
    "find_marked_processes",
    "floor_and_mark",
    "forked_since",
    "kill_marked_processes",
    "leader_gone",
    "leader_spawned",
    "pid_floor",
    "signal_outside_group",
    "sweep",
    "sweeper",
]

MARKER_ENV = "CC_EXECUTOR_EXECUTION_ID"  # inherited by every descendant unless it clears its env
SWEEP_WAIT_S = 2.0  # after SIGKILL, how long to wait for swept processes to be gone
SWEEP_MAX_ROUNDS = 3  # a process that forked while we were killing is caught by the next round

_HAS_PIDFD = hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")
_PROC = "/proc"
_HAS_PROC = os.path.exists(f"{_PROC}/self/environ")
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
_LEADERS: dict[int, bytes] = {}


def leader_spawned(pid: int, marker: str) -> None:
    """Record a leader spawned with ``marker`` (until :func:`leader_gone`)."""
    _LEADERS[pid] = os.fsencode(marker)


def leader_gone(pid: int) -> None:
    """The leader was reaped (its pid may be handed out again): forget it. Idempotent."""
    _LEADERS.pop(pid, None)


def descendants(pid: int) -> list[psutil.Process]:
    """A snapshot of ``pid``'s process tree (empty once it is gone)."""
    return _processes(descendant_pids(pid))


def descendant_pids(pid: int) -> list[int]:
    """The pids of ``pid``'s process tree now (empty once it is gone); no psutil object each."""
    if _HAS_PROC:
        return _descendants_procfs(pid)
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


class Pinned:
    """Processes held by identity until they are killed: a pidfd each where the kernel has them.

    A pidfd names one process for good: signalling it never reaches a later process that got
    the same pid, and it reads ready once that process has exited. So a snapshot taken before
    a group is signalled can be killed seconds later (after the grace period) without checking
    each pid's creation time again (psutil: ~100 us a process, on the way to
    ``process.completed``). Without pidfds: psutil objects, which compare creation times.
    """

    __slots__ = ("_fds", "_procs")

    def __init__(self, pids: Iterable[int]) -> None:
        self._fds: dict[int, int] = {}
        self._procs: list[psutil.Process] = []
        if not _HAS_PIDFD:
            self._procs = _processes(pids)
            return
        for pid in pids:
            try:
                self._fds[pid] = os.pidfd_open(pid)
            except OSError:  # gone already (ESRCH), or pidfds refused: nothing left to pin
                continue

    def take(self) -> tuple[dict[int, int], list[psutil.Process]]:
        """Hand the pidfds (the caller closes them) and psutil objects over; empties this."""
        fds, procs = self._fds, self._procs
        self._fds, self._procs = {}, []
        return fds, procs

    def kill_now(self) -> None:
        """SIGKILL what is pinned, wait for nothing, release it."""
        fds, procs = self.take()
        for fd in fds.values():
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            os.close(fd)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()

    def close(self) -> None:
        for fd in self.take()[0].values():
            os.close(fd)


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


def floor_and_mark(leader_pid: int, spawned_at: float) -> tuple[int | None, _PidMark | None]:
    """:func:`pid_floor`, and the pid mark it was read from (one read for both)."""
    mark = _pid_mark()
    if mark is None or mark.last_pid < leader_pid:
        return None, mark  # unreadable, or wrapped since the spawn
    if mark.at - spawned_at >= mark.wrap_s:
        return None, mark  # could have wrapped all the way round
    return leader_pid, mark


def forked_since(floor: int | None, mark: _PidMark | None) -> bool:
    """False only when no pid was handed out since the leader's (``floor``): nothing was
    created after it, so it has no descendant and nothing can carry its marker."""
    return floor is None or mark is None or mark.last_pid != floor


def find_marked_processes(marker: str) -> list[psutil.Process]:
    """Every live process whose environment carries ``MARKER_ENV=marker`` (never this process)."""
    if _HAS_PROC:
        key = os.fsencode(marker)
        marked = _scan_marked(frozenset((key,)), os.listdir(_PROC), leaders=_LEADERS)
        return _processes(marked.get(key, ()))
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


def _processes(pids: Iterable[int]) -> list[psutil.Process]:
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
    ``leaders`` (a snapshot of the live leaders, pid -> marker) are not read: their marker is
    known. Safe to run in a worker thread (it only reads ``/proc``).
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
            known = leaders.get(pid)
            if known is not None:
                if known in markers:
                    found.setdefault(known, []).append(pid)
                continue
        data = _read_proc_file(f"{_PROC}/{name}/environ", _ENVIRON_READ)
        if data is None:
            # Gone, or another user's (EACCES): never one we could find by marker. Or in the
            # middle of exiting (its memory is gone): then it is left for _unsettled to wait for.
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
class _PidMark:
    """The kernel's last handed-out pid just before a ``/proc`` listing (see :func:`_pid_mark`)."""

    last_pid: int
    at: float  # monotonic time of the read
    wrap_s: float  # the allocator needs at least this long to go all the way round

    def unchanged(self) -> bool:
        """True when no process (nor thread) was created since: a sweep round that read every
        candidate of its listing then has nothing left to find."""
        if time.monotonic() - self.at >= self.wrap_s:
            return False
        mark = _pid_mark()
        return mark is not None and mark.last_pid == self.last_pid


def _pid_mark() -> _PidMark | None:
    try:
        last_pid = int(_read_proc_file(_LAST_PID_FILE, 64) or b"")
        pid_max = int(_read_proc_file(_PID_MAX_FILE, 64) or b"")
    except ValueError:
        return None
    return _PidMark(last_pid, time.monotonic(), (pid_max - _RESERVED_PIDS) / MAX_FORKS_PER_S)


_Listing = tuple[dict[bytes, list[int]], frozenset[str], _PidMark | None]
"""A pass: marked pids, the ``/proc`` entries it settled, and its pid mark (``None`` unless it
read every candidate)."""


def _scan_all(
    markers: frozenset[bytes],
    floor: int | None = None,
    leaders: Mapping[int, bytes] | None = None,
    mark: _PidMark | None = None,
) -> _Listing:
    """The marked pids, and the pid entries above ``floor`` this pass settled (read and not
    empty). Those at or below it were created before every leader asked about (see
    :func:`pid_floor`): every later round skips them too (``_rescan``, ``_unsettled``).

    The candidates are :func:`_pid_names`: with a floor and few pids handed out since it, each
    of them is opened directly instead of listing ``/proc``. ``mark``: the pid mark, if the
    caller read one just before (it must come before the listing: whatever comes after it
    moves the counter).
    """
    if mark is None:
        mark = _pid_mark()
    candidates = _pid_names(floor, mark)
    unread: set[str] = set()
    found = _scan_marked(markers, candidates, unread, leaders=leaders)
    return found, candidates - unread, None if unread else mark


def _timed_scan_all(
    markers: frozenset[bytes],
    floor: int | None,
    leaders: Mapping[int, bytes] | None = None,
    mark: _PidMark | None = None,
) -> tuple[_Listing, float]:
    # CPU time of this thread, not wall time: in a worker thread the wall time also counts the
    # waits for the GIL while the loop is busy, and a pass measured that way would look too
    # dear to ever run on the loop again.
    began = time.thread_time()
    return _scan_all(markers, floor, leaders, mark), time.thread_time() - began


_Found = tuple[list[int], frozenset[str], _PidMark | None]


class Sweeper:
    """Coalesces marker scans: one ``/proc`` pass serves every marker asked for meanwhile.

    Every finished execution scans the whole process table for its marker. When many finish
    together (200 ``sleep 1`` ending in the same few ms) one pass per execution would cost
    O(executions x processes) on the loop. Instead, :meth:`find` registers the marker and the
    pass runs in a worker thread (the loop keeps serving); every marker registered while a pass
    runs is served by the *next* pass, which starts as soon as the current one ends. A marker is
    only ever answered by a pass that started after it was asked for, so nothing forked before the
    request is missed. No timer, no added wait.

    A pass for one marker runs on the loop while passes are cheap (the last took at most
    ``INLINE_PASS_MAX_S``; ~80 us for 100 processes): the thread hop costs ~0.5 ms, on the way
    to every ``process.completed``.
    """

    INLINE_PASS_MAX_S = 0.0005
    EARLY_PASS_MAX_S = 0.002  # an early pass dearer than this ...
    EARLY_RETRY_S = 10.0  # ... leaves the next ones to the shared passes for this long

    def __init__(self, *, threaded: bool | None = None) -> None:
        self._threaded = threaded  # None: in a thread only when busy (see above)
        self._last_cost = 0.0  # seconds the latest pass took (in the thread: there)
        self._early_retry_at = 0.0  # monotonic time before which pass_now declines
        self._wanted: dict[bytes, asyncio.Future[_Found]] = {}
        # Per wanted marker, the pid floor its pass may skip up to (None: read every process).
        self._floors: dict[bytes, int | None] = {}
        self._runner: asyncio.Task[None] | None = None
        self.scans = 0  # passes run so far (tests and benchmarks read it)

    def pass_now(
        self,
        marker: str,
        floor: int | None = None,
        ours: Iterable[int] = (),
        mark: _PidMark | None = None,
    ) -> _Found | None:
        """A pass for ``marker`` alone, on the loop, now (:func:`early_pass`); None while such
        passes are not cheap: for ``EARLY_RETRY_S`` after one took over ``EARLY_PASS_MAX_S``.
        ``ours``: pids known to be this execution's (its walked tree), counted without a read.

        Timed apart from the shared passes: those often read processes in the middle of exiting,
        which is several times slower than reading a tree at rest.
        """
        if self._threaded is True or time.monotonic() < self._early_retry_at:
            return None
        key = os.fsencode(marker)
        known: Mapping[int, bytes] = _LEADERS
        if ours:
            known = {**_LEADERS, **dict.fromkeys(ours, key)}
        listing, cost = _timed_scan_all(frozenset((key,)), floor, known, mark)
        self.scans += 1
        if cost > self.EARLY_PASS_MAX_S:
            self._early_retry_at = time.monotonic() + self.EARLY_RETRY_S
        found, names, mark = listing
        return found.get(key, []), names, mark

    async def find(self, marker: str, floor: int | None = None) -> _Found:
        """Pids carrying ``marker``, the ``/proc`` entries the pass settled, and its pid mark.

        ``floor`` (from :func:`pid_floor`): processes at or below it need not be read. A pass
        serving several markers uses the lowest floor of them, or none if any has none.
        """
        key = os.fsencode(marker)
        loop = asyncio.get_running_loop()
        waiter = self._wanted.get(key)
        if waiter is None:
            waiter = self._wanted[key] = loop.create_future()
            self._floors[key] = floor
        else:
            previous = self._floors.get(key)
            self._floors[key] = None if previous is None or floor is None else min(previous, floor)
        if self._runner is None:
            self._runner = loop.create_task(self._run())
        return await asyncio.shield(waiter)  # a cancelled caller must not fail the others

    async def _run(self) -> None:
        batch: dict[bytes, asyncio.Future[_Found]] = {}
        try:
            while self._wanted:
                batch, self._wanted = self._wanted, {}
                floors, self._floors = self._floors, {}
                wanted = [floors.get(key) for key in batch]
                known = [v for v in wanted if v is not None]
                floor = min(known) if len(known) == len(wanted) else None
                await self._pass(batch, floor)
                batch = {}
        finally:
            self._runner = None
            if self._wanted or batch:  # cancelled (loop shutting down): nobody would answer
                for waiter in [*batch.values(), *self._wanted.values()]:
                    if not waiter.done():
                        waiter.cancel()
                self._wanted = {}

    async def _pass(
        self,
        batch: dict[bytes, asyncio.Future[_Found]],
        floor: int | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        markers = frozenset(batch)
        threaded = self._threaded
        if threaded is None:
            threaded = len(batch) > 1 or self._last_cost > self.INLINE_PASS_MAX_S
        try:
            if threaded:  # a snapshot of the leaders: the thread must not see the dict change
                listing, self._last_cost = await loop.run_in_executor(
                    None, _timed_scan_all, markers, floor, dict(_LEADERS)
                )
            else:
                listing, self._last_cost = _timed_scan_all(markers, floor, _LEADERS)
        except Exception as exc:  # e.g. /proc unreadable: every waiter of this pass fails
            for waiter in batch.values():
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        self.scans += 1
        found, names, mark = listing
        for key, waiter in batch.items():
            if not waiter.done():
                waiter.set_result((found.get(key, []), names, mark))


sweeper = loop_local(lambda _loop: Sweeper())
"""The running loop's :class:`Sweeper`."""


@dataclass(frozen=True, slots=True)
class EarlyPass:
    """A marker pass run while a canceled group dies (:func:`find_escaped`), for its sweep."""

    found: _Found
    began: float  # monotonic time before the pass listed /proc
    wrap_s: float  # the pid allocator needs at least this long to go all the way round

    def fresh(self) -> bool:
        """True while none of its pids can have been handed out again (no wrap since)."""
        return time.monotonic() - self.began < self.wrap_s


def early_pass(
    marker: str,
    floor: int | None,
    ours: Iterable[int] = (),
    mark: _PidMark | None = None,
) -> EarlyPass | None:
    """The first pass of a cancel's sweep, run on the loop right after the group is signalled.

    The sweep after the group is gone has to find what left the group (``setsid``, double
    forks) by its marker. Run then, the pass and the kills sit on the way to
    ``process.completed``. Run while the group acts on its SIGTERM (which takes about a
    millisecond), it costs nothing there, and what it finds outside the group gets the same
    SIGTERM (:func:`signal_outside_group`) a few hundred microseconds after the group did. The
    sweep takes this pass as its first round while it is fresh; processes created after its
    listing are found by the rounds after it, as usual. ``None`` when there is nothing to do
    (no ``/proc``, or no pid handed out since the leader's, ``floor``) or when passes are not
    cheap now (the sweep after the group does one, shared, as before). ``ours`` (the tree just
    walked) are this execution's whatever their environ says: not read, counted as found.
    ``mark``: the pid mark the caller read before walking the tree, if any (one read less).
    """
    if not _HAS_PROC:
        return None
    now = mark if mark is not None else _pid_mark()
    if now is None or (floor is not None and now.last_pid == floor):
        return None
    found = sweeper().pass_now(marker, floor, ours, now)
    if found is None:
        return None
    return EarlyPass(found, now.at, now.wrap_s)


def signal_outside_group(
    pids: Iterable[int], pgid: int, *signals: signal.Signals, skip: Collection[int] = ()
) -> set[int]:
    """Send ``signals`` to each of ``pids`` outside the group ``pgid`` (which got them from
    ``killpg``) and not in ``skip``; returns the pids signalled. For pids just read (a tree
    walk, a pass): within that time a pid is not handed out again."""
    signalled: set[int] = set()
    for pid in pids:
        if pid in skip:
            continue
        try:
            if os.getpgid(pid) == pgid:
                continue
            for sig in signals:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            continue
        signalled.add(pid)
    return signalled


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
            tids = os.listdir(f"{_PROC}/{parent}/task")
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


def _targets(marker: str, extra: Iterable[psutil.Process]) -> list[psutil.Process]:
    found = find_marked_processes(marker)
    return [*found, *_live_extra(list(extra), [proc.pid for proc in found])]


def _sigkill(proc: psutil.Process) -> int | None:
    """SIGKILL ``proc``; returns a pidfd to wait on (None when gone or pidfds are unavailable)."""
    if _HAS_PIDFD:
        try:
            fd = os.pidfd_open(proc.pid)
        except ProcessLookupError:
            return None
        except OSError:
            pass  # pidfds unsupported by this kernel: fall back to psutil below
        else:
            try:
                # Between the scan and pidfd_open the pid may have been recycled; the pidfd now
                # pins whatever owns it, so check it is still the process we found, then signal
                # through the pidfd (race-free from here on).
                if proc.is_running():
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                    return fd
            except ProcessLookupError:
                pass
            except PermissionError:
                logger.warning("cannot kill pid {} (EPERM)", proc.pid)
            os.close(fd)
            return None
    try:
        proc.kill()
    except psutil.NoSuchProcess:
        pass
    except psutil.AccessDenied:
        logger.warning("cannot kill pid {} (EPERM)", proc.pid)
    return None


def kill_marked_processes(marker: str, *, extra: Iterable[psutil.Process] = ()) -> int:
    """SIGKILL every process carrying the marker (and ``extra``) without waiting; returns count."""
    count = 0
    for proc in _targets(marker, extra):
        fd = _sigkill(proc)
        if fd is not None:
            os.close(fd)
        count += 1
    return count


async def _wait_pidfds(fds: list[int], wait_s: float) -> None:
    """Wait until every pidfd is readable (its process has exited), at most ``wait_s``."""
    loop = asyncio.get_running_loop()
    waiters: list[asyncio.Future[None]] = []
    for fd in fds:
        waiter: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _resolve, waiter)
        waiters.append(waiter)
    try:
        async with asyncio.timeout(wait_s):
            for waiter in waiters:
                await waiter
    except TimeoutError:
        logger.warning("{} killed processes still present after {}s", len(fds), wait_s)
    finally:
        for fd in fds:
            loop.remove_reader(fd)
            os.close(fd)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def sweep(
    marker: str,
    *,
    extra: Iterable[psutil.Process] = (),
    wait_s: float = SWEEP_WAIT_S,
    floor: int | None = None,
    prior: EarlyPass | None = None,
    pinned: Pinned | None = None,
    mark: _PidMark | None = None,
) -> int:
    """SIGKILL every marked process (and ``extra``), wait until they are gone; returns count.

    Repeats the scan (up to ``SWEEP_MAX_ROUNDS``) because a process may fork between the scan and
    its death. Zombies count as gone: they run no code and hold no pipe.

    The first scan is a pass shared with every other sweep asking at the same time (reading only
    processes above ``floor`` when :func:`pid_floor` could prove the older ones cannot be ours)
    (:class:`Sweeper`), or ``prior``: the pass :func:`find_escaped` ran when the cancel began,
    while it is fresh. The first round also kills ``pinned`` (the tree as it was before the
    group was signalled), which the sweep takes over. A later round only has to find what was
    forked since the previous pass listed ``/proc``: processes read then without the marker
    cannot have gained it, so it reads the environ of the new ``/proc`` entries, and again those
    whose environ read empty (zombies, or a process in the middle of ``exec``), only (a pid
    number is reused only
    after the kernel's pid counter wraps, not within a sweep). No later round at all when the
    counter has not moved since the pass listed ``/proc`` and the pass read every candidate
    (:class:`_PidMark`): nothing was created since, so nothing is left to find. And no pass at
    all when the counter still stands at ``floor`` (the leader's pid): nothing was created after
    the leader.
    """
    pending_extra = list(extra)
    pinned_fds, pinned_procs = pinned.take() if pinned is not None else ({}, [])
    pending_extra.extend(pinned_procs)
    try:
        return await _sweep_rounds(
            marker, pending_extra, pinned_fds, wait_s=wait_s, floor=floor, prior=prior, now=mark
        )
    finally:
        for fd in pinned_fds.values():  # what the first round did not take (it returned early)
            os.close(fd)


async def _sweep_rounds(
    marker: str,
    pending_extra: list[psutil.Process],
    pinned_fds: dict[int, int],
    *,
    wait_s: float,
    floor: int | None,
    prior: EarlyPass | None,
    now: _PidMark | None,
) -> int:
    killed = 0
    if floor is not None and not pending_extra and not pinned_fds and _HAS_PROC:
        now = now or _pid_mark()  # (the caller's, read just before, saves a read)
        if now is not None and now.last_pid == floor:
            # No pid was handed out since the leader's: it forked nothing, nobody could have
            # inherited the marker. The common end of a command that never forks (no scan).
            return 0
    if prior is not None and not prior.fresh():
        prior = None  # its pids may have been handed out again since: pass afresh
    listed: frozenset[str] | None = None
    mark: _PidMark | None = None
    for _ in range(SWEEP_MAX_ROUNDS):
        pids: list[int] = []
        if not _HAS_PROC:
            procs = _targets(marker, pending_extra)
        else:
            if listed is not None:
                pids, listed, mark = _rescan(marker, listed, floor)
            elif prior is not None:
                pids, listed, mark = prior.found
            else:
                pids, listed, mark = await sweeper().find(marker, floor)
            procs = _live_extra(pending_extra, pids)
        pending_extra = []
        fds = dict(pinned_fds)  # the first round kills what is pinned, and owns the pidfds
        pinned_fds.clear()
        if not pids and not procs and not fds:
            if await _settled(mark, listed, floor, wait_s):
                break
            continue  # something read empty (mid-exec?): read it again next round
        signalled = await _kill_and_wait(pids, procs, wait_s, fds)
        killed += signalled
        logger.debug("swept {} process(es) marked {}", signalled, marker)
        if mark is not None and mark.unchanged():
            break  # nothing forked between the listing and the kills: no round to catch it
    return killed


async def _settled(
    mark: _PidMark | None, listed: frozenset[str] | None, floor: int | None, wait_s: float
) -> bool:
    """After a round that found nothing: True when nothing is left to find (once what is
    exiting is gone), False when a process read empty and must be read again."""
    if mark is not None and mark.unchanged():
        return True  # every candidate was read and nothing was created since: all settled
    if listed is None:
        return True
    unsettled, exiting = _unsettled(listed, floor)
    if exiting:
        # Killed with the group (or otherwise dying): its environ is gone already, and it
        # closes its pipes before it is a zombie. Done only once it is.
        await _wait_gone(exiting, wait_s)
    return not unsettled


def _rescan(marker: str, listed: frozenset[str], floor: int | None) -> _Found:
    """A later round: read what ``/proc`` holds now that the passes so far did not settle."""
    mark = _pid_mark()
    names = _pid_names(floor, mark)
    key = os.fsencode(marker)
    unread: set[str] = set()
    found = _scan_marked(frozenset((key,)), names - listed, unread, leaders=_LEADERS)
    return found.get(key, []), (names | listed) - unread, None if unread else mark


def _pid_names(floor: int | None, mark: _PidMark | None) -> frozenset[str]:
    """Every pid above ``floor`` that may exist now (``mark`` read just before): the range up
    to the last pid handed out while it is short (see :func:`_scan_all`), else a listing."""
    if floor is not None and mark is not None and floor <= mark.last_pid <= floor + RANGE_PROBE_MAX:
        return frozenset(str(pid) for pid in range(floor + 1, mark.last_pid + 1))
    return frozenset(_above(os.listdir(_PROC), floor))


def _above(names: Iterable[str], floor: int | None) -> list[str]:
    """The pid entries among ``names`` above ``floor`` (all of them without one)."""
    if floor is None:
        return [name for name in names if name.isdigit()]
    return [name for name in names if name.isdigit() and int(name) > floor]


def _live_extra(extra: list[psutil.Process], pids: list[int]) -> list[psutil.Process]:
    """The processes of ``extra`` still running and not among ``pids`` (nor this process)."""
    if not extra:
        return []
    skip = {*pids, os.getpid()}
    # is_running() compares the creation time too, so a recycled pid is never hit.
    return [proc for proc in extra if proc.pid not in skip and proc.is_running()]


async def _kill_and_wait(
    pids: list[int],
    procs: list[psutil.Process],
    wait_s: float,
    pinned: dict[int, int] | None = None,
) -> int:
    """SIGKILL every target, then wait (at most ``wait_s``) until they are gone.

    ``pids`` come from a pass that just read their marker: within a sweep a pid is not handed
    out again (the premise of every round, see :func:`sweep`), so they are signalled through a
    pidfd opened now, with no psutil object per pid (~80 us each: it reads ``stat`` twice).
    ``pinned`` (pid -> pidfd, taken over: closed here) are signalled through their own pidfds,
    ``procs`` (a snapshot that may be old) after checking their creation time. Returns how many
    were signalled (zombies included: they are gone once reaped, and waiting costs nothing).
    """
    fds: list[int] = []
    no_fd: list[psutil.Process] = []
    pinned = dict(pinned or {})
    signalled = 0
    if _HAS_PIDFD:
        for pid in pids:
            fd = pinned.pop(pid, None)
            fd = _kill_pid(pid) if fd is None else _kill_pidfd(fd, pid)
            if fd is not None:
                fds.append(fd)
        signalled = len(fds)
    else:
        procs = [*_processes(pids), *procs]
    for pid, pidfd in pinned.items():
        fd = _kill_pidfd(pidfd, pid, count_gone=False)
        if fd is not None:
            fds.append(fd)
            signalled += 1
        else:
            os.close(pidfd)
    for proc in procs:
        fd = _sigkill(proc)
        if fd is not None:
            fds.append(fd)
        else:
            no_fd.append(proc)
    await _wait_pidfds(fds, wait_s)
    if no_fd and not _HAS_PIDFD:
        await asyncio.to_thread(psutil.wait_procs, no_fd, timeout=wait_s)
    return signalled + len(procs)


def _kill_pidfd(fd: int, pid: int, *, count_gone: bool = True) -> int | None:
    """SIGKILL through ``fd``; ``fd`` to wait on, or None (not closed) when it cannot be.

    A process that has exited (ESRCH) still gives a pidfd that reads ready: returned when
    ``count_gone``, else None so the caller can drop it.
    """
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
    except ProcessLookupError:
        return fd if count_gone else None
    except PermissionError:
        logger.warning("cannot kill pid {} (EPERM)", pid)
        return None
    return fd


def _kill_pid(pid: int) -> int | None:
    """SIGKILL ``pid`` through a pidfd; the pidfd to wait on, or None when it is gone."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # ESRCH: reaped already
        return None
    killed = _kill_pidfd(fd, pid)
    if killed is None:
        os.close(fd)
    return killed


def _unsettled(listed: frozenset[str], floor: int | None = None) -> tuple[bool, list[int]]:
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
    for name in _pid_names(floor, _pid_mark()):
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


async def _wait_gone(pids: list[int], wait_s: float) -> None:
    """Wait (at most ``wait_s``) until these processes have exited; signals none of them."""
    fds: list[int] = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except (OSError, AttributeError):  # gone already, or no pidfds here: nothing to wait on
            continue
    await _wait_pidfds(fds, wait_s)
