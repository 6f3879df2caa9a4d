"""Killing an execution's escaped descendants: the sweep, its shared passes, and kills by pidfd.

Owns: finding what carries an execution's marker with one ``/proc`` pass shared by every sweep
asking at the same time (:class:`Sweeper`; the reads themselves are ``procfs.py``'s), the early
pass of a cancel, snapshots of a tree pinned by pidfds (:class:`Pinned`), and SIGKILL + wait for
what was found (pidfds where the kernel has them). Does not own: the process group itself, its
signals or its pipes (``process.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import psutil
from loguru import logger

from cc_executor.supervisor import procfs
from cc_executor.supervisor.looplocal import loop_local
from cc_executor.supervisor.procfs import (
    HAS_PROC,
    LEADERS,
    Found,
    Listing,
    PidMark,
    find_marked_processes,
    processes,
)

__all__ = [
    "SWEEP_MAX_ROUNDS",
    "SWEEP_WAIT_S",
    "EarlyPass",
    "Pinned",
    "Sweeper",
    "early_pass",
    "kill_marked_processes",
    "signal_outside_group",
    "sweep",
    "sweeper",
]

SWEEP_WAIT_S = 2.0  # after SIGKILL, how long to wait for swept processes to be gone
SWEEP_MAX_ROUNDS = 3  # a process that forked while we were killing is caught by the next round

_HAS_PIDFD = hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")


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
            self._procs = processes(pids)
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
        for pid, fd in fds.items():
            _kill_pidfd(fd, pid)
            os.close(fd)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()

    def close(self) -> None:
        for fd in self.take()[0].values():
            os.close(fd)


def _timed_scan_all(
    markers: frozenset[bytes],
    floor: int | None,
    leaders: Mapping[int, bytes] | None = None,
    mark: PidMark | None = None,
) -> tuple[Listing, float]:
    # CPU time of this thread, not wall time: in a worker thread the wall time also counts the
    # waits for the GIL while the loop is busy, and a pass measured that way would look too
    # dear to ever run on the loop again.
    began = time.thread_time()
    return procfs.scan_all(markers, floor, leaders, mark), time.thread_time() - began


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
        self._wanted: dict[bytes, asyncio.Future[Found]] = {}
        # Per wanted marker, the pid floor its pass may skip up to (None: read every process).
        self._floors: dict[bytes, int | None] = {}
        self._runner: asyncio.Task[None] | None = None
        self.scans = 0  # passes run so far (tests and benchmarks read it)

    def pass_now(
        self,
        marker: str,
        floor: int | None = None,
        ours: Iterable[int] = (),
        mark: PidMark | None = None,
    ) -> Found | None:
        """A pass for ``marker`` alone, on the loop, now (:func:`early_pass`); None while such
        passes are not cheap: for ``EARLY_RETRY_S`` after one took over ``EARLY_PASS_MAX_S``.
        ``ours``: pids known to be this execution's (its walked tree), counted without a read.

        Timed apart from the shared passes: those often read processes in the middle of exiting,
        which is several times slower than reading a tree at rest.
        """
        if self._threaded is True or time.monotonic() < self._early_retry_at:
            return None
        key = os.fsencode(marker)
        known: Mapping[int, bytes] = LEADERS
        if ours:
            known = {**LEADERS, **dict.fromkeys(ours, key)}
        listing, cost = _timed_scan_all(frozenset((key,)), floor, known, mark)
        self.scans += 1
        if cost > self.EARLY_PASS_MAX_S:
            self._early_retry_at = time.monotonic() + self.EARLY_RETRY_S
        found, names, mark = listing
        return found.get(key, []), names, mark

    async def find(self, marker: str, floor: int | None = None) -> Found:
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
        batch: dict[bytes, asyncio.Future[Found]] = {}
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
        batch: dict[bytes, asyncio.Future[Found]],
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
                    None, _timed_scan_all, markers, floor, dict(LEADERS)
                )
            else:
                listing, self._last_cost = _timed_scan_all(markers, floor, LEADERS)
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

    found: Found
    began: float  # monotonic time before the pass listed /proc
    wrap_s: float  # the pid allocator needs at least this long to go all the way round

    def fresh(self) -> bool:
        """True while none of its pids can have been handed out again (no wrap since)."""
        return time.monotonic() - self.began < self.wrap_s


def early_pass(
    marker: str,
    floor: int | None,
    ours: Iterable[int] = (),
    mark: PidMark | None = None,
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
    if not HAS_PROC:
        return None
    now = mark if mark is not None else procfs.pid_mark()
    if now is None or not procfs.forked_since(floor, now):
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
        loop.add_reader(fd, _resolve, loop, fd, waiter)
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


def _resolve(loop: asyncio.AbstractEventLoop, fd: int, waiter: asyncio.Future[None]) -> None:
    # A pidfd stays readable once its process has exited: left in the selector, it would call
    # this again on every loop turn until the last of the others is gone (a busy loop that took
    # a core from the processes dying on the other; round 12).
    loop.remove_reader(fd)
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
    mark: PidMark | None = None,
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
    (:class:`PidMark`): nothing was created since, so nothing is left to find. And no pass at
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
    now: PidMark | None,
) -> int:
    killed = 0
    if floor is not None and not pending_extra and not pinned_fds and HAS_PROC:
        now = now or procfs.pid_mark()  # (the caller's, read just before, saves a read)
        if not procfs.forked_since(floor, now):
            # No pid was handed out since the leader's: it forked nothing, nobody could have
            # inherited the marker. The common end of a command that never forks (no scan).
            return 0
    if prior is not None and not prior.fresh():
        prior = None  # its pids may have been handed out again since: pass afresh
    listed: frozenset[str] | None = None
    mark: PidMark | None = None
    for _ in range(SWEEP_MAX_ROUNDS):
        pids: list[int] = []
        if not HAS_PROC:
            procs = _targets(marker, pending_extra)
        else:
            if listed is not None:
                pids, listed, mark = procfs.rescan(marker, listed, floor)
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
    mark: PidMark | None, listed: frozenset[str] | None, floor: int | None, wait_s: float
) -> bool:
    """After a round that found nothing: True when nothing is left to find (once what is
    exiting is gone), False when a process read empty and must be read again."""
    if mark is not None and mark.unchanged():
        return True  # every candidate was read and nothing was created since: all settled
    if listed is None:
        return True
    unsettled, exiting = procfs.unsettled(listed, floor)
    if exiting:
        # Killed with the group (or otherwise dying): its environ is gone already, and it
        # closes its pipes before it is a zombie. Done only once it is.
        await _wait_gone(exiting, wait_s)
    return not unsettled


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
        procs = [*processes(pids), *procs]
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


async def _wait_gone(pids: list[int], wait_s: float) -> None:
    """Wait (at most ``wait_s``) until these processes have exited; signals none of them."""
    fds: list[int] = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except (OSError, AttributeError):  # gone already, or no pidfds here: nothing to wait on
            continue
    await _wait_pidfds(fds, wait_s)
