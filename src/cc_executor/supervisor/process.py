"""Process groups: spawn in a new session, read both pipes, signal the group, kill everything.

Owns: every ``os``/``signal``/``psutil``/subprocess call of the project. A :class:`ProcessGroup` is
one child spawned with ``start_new_session=True`` (so its pgid is its pid, recorded at spawn), its
stdout/stderr pipes delivered to a callback as raw chunks (never split by line, so no line-length
limit exists), its optional stdin pipe, and the means to end it: signal the group, TERM -> CONT ->
grace -> KILL, and a *sweep* that kills escaped descendants (a grandchild that called ``setsid`` or
double-forked leaves the group) found by the environment marker ``CC_EXECUTOR_EXECUTION_ID=<id>``
and by a snapshot of the process tree taken before signalling.
Does not own: states, timeouts, events (``execution.py``) or policy (``supervisor.py``).

Why a :class:`asyncio.SubprocessProtocol` instead of ``create_subprocess_exec`` + StreamReaders:
``Process.wait()`` only returns once *both the leader has exited and every pipe is closed*, so a
background child that inherited stdout would keep it waiting forever. The protocol tells us the
moment the leader exits (``process_exited``), independently of pipe EOF, and hands us each chunk
the loop read (up to 256 KiB) without a second buffer or a reader task per pipe.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from subprocess import DEVNULL, PIPE
from typing import Literal, cast

import psutil
from loguru import logger

__all__ = [
    "MARKER_ENV",
    "SWEEP_MAX_ROUNDS",
    "SWEEP_WAIT_S",
    "TERMINATE_GRACE_S",
    "OutputHandler",
    "ProcessGroup",
    "Stream",
    "find_marked_processes",
    "kill_marked_processes",
    "sweep",
]

MARKER_ENV = "CC_EXECUTOR_EXECUTION_ID"  # inherited by every descendant unless it clears its env
TERMINATE_GRACE_S = 5.0  # default time between SIGTERM and SIGKILL to the group
SWEEP_WAIT_S = 2.0  # after SIGKILL, how long to wait for swept processes to be gone
SWEEP_MAX_ROUNDS = 3  # a process that forked while we were killing is caught by the next round

Stream = Literal["stdout", "stderr"]
OutputHandler = Callable[[Stream, bytes], None]

_HAS_PIDFD = hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")
_PROC = "/proc"
_HAS_PROC = os.path.exists(f"{_PROC}/self/environ")
_ENVIRON_READ = 64 * 1024  # one read holds any ordinary environment
_STAT_READ = 4096  # a /proc/<pid>/stat line is a few hundred bytes


class _GroupProtocol(asyncio.SubprocessProtocol):
    """Turns the transport's callbacks into futures and output callbacks."""

    def __init__(self, on_output: OutputHandler, loop: asyncio.AbstractEventLoop) -> None:
        self._on_output = on_output
        self.exited: asyncio.Future[None] = loop.create_future()
        self.stdout_closed: asyncio.Future[None] = loop.create_future()
        self.stderr_closed: asyncio.Future[None] = loop.create_future()
        self.stdin_lost = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._loop = loop

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        assert isinstance(data, bytes)  # pipes are opened in binary mode
        self._on_output("stdout" if fd == 1 else "stderr", data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 0:
            self.stdin_lost = True
            self._release_drain()
        else:
            closed = self.stdout_closed if fd == 1 else self.stderr_closed
            if not closed.done():
                closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._release_drain()

    def _release_drain(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        if not self._write_paused or self.stdin_lost:
            return
        if self._drain_waiter is None:
            self._drain_waiter = self._loop.create_future()
        await asyncio.shield(self._drain_waiter)


class ProcessGroup:
    """One spawned child leading its own session and process group; see the module docstring."""

    def __init__(
        self,
        transport: asyncio.SubprocessTransport,
        protocol: _GroupProtocol,
        *,
        marker: str,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self.marker = marker
        pid = transport.get_pid()
        self.pid: int = pid
        # start_new_session=True makes the child call setsid() before exec, and Popen returns only
        # after exec succeeded, so the group exists and pgid == pid from here on.
        self.pgid: int = pid
        self._group_gone = False

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        cwd: Path | str | None,
        env: Mapping[str, str],
        stdin: bool,
        marker: str,
        on_output: OutputHandler,
    ) -> ProcessGroup:
        """Start ``argv`` in a new session with ``MARKER_ENV=marker`` added to ``env``.

        Raises what ``exec`` raises (``FileNotFoundError``, ``PermissionError``, ``OSError``).
        """
        loop = asyncio.get_running_loop()
        child_env = dict(env)
        child_env[MARKER_ENV] = marker
        transport, protocol = await loop.subprocess_exec(
            lambda: _GroupProtocol(on_output, loop),
            *argv,
            stdin=PIPE if stdin else DEVNULL,
            stdout=PIPE,
            stderr=PIPE,
            cwd=cwd,
            env=child_env,
            start_new_session=True,
        )
        group = cls(transport, protocol, marker=marker)
        logger.debug("spawned pid={} pgid={} marker={}", group.pid, group.pgid, marker)
        return group

    # --- state of the leader and the pipes -------------------------------------------------------

    @property
    def returncode(self) -> int | None:
        """The leader's return code (negative: killed by that signal), None while it runs."""
        return self._transport.get_returncode()

    @property
    def exited(self) -> bool:
        return self._protocol.exited.done()

    async def wait(self) -> int:
        """Wait for the leader to exit (not for the pipes); returns its return code."""
        await asyncio.shield(self._protocol.exited)  # a cancelled waiter must not cancel others
        code = self._transport.get_returncode()
        assert code is not None
        return code

    async def wait_output_closed(self) -> None:
        """Wait until stdout and stderr reached EOF (every writer holding them is gone)."""
        await asyncio.shield(self._protocol.stdout_closed)
        await asyncio.shield(self._protocol.stderr_closed)

    # --- stdin -----------------------------------------------------------------------------------

    def _stdin(self) -> asyncio.WriteTransport:
        pipe = self._transport.get_pipe_transport(0)
        if pipe is None or pipe.is_closing() or self._protocol.stdin_lost:
            raise BrokenPipeError("stdin is closed")
        # uvloop's pipe transports implement WriteTransport without subclassing it.
        return cast(asyncio.WriteTransport, pipe)

    @property
    def stdin_open(self) -> bool:
        try:
            self._stdin()
        except BrokenPipeError:
            return False
        return True

    async def write_stdin(self, data: bytes, *, eof: bool = False) -> None:
        """Queue ``data`` on stdin and wait while the pipe is over its high-water mark.

        Raises ``BrokenPipeError`` when stdin was not opened or is already closed.
        """
        pipe = self._stdin()
        if data:
            pipe.write(data)
        if eof:
            pipe.close()  # flushes what is queued, then closes: the child sees EOF
            return
        await self._protocol.drain()

    # --- signals ---------------------------------------------------------------------------------

    def signal_group(self, sig: signal.Signals) -> bool:
        """Send ``sig`` to every member of the group; False when the group is already gone."""
        if self._group_gone:
            # Once the group was seen empty its number may be reused by an unrelated new session
            # leader (pid wrap-around); never signal it again.
            return False
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:  # ESRCH: no member left; not an error
            self._group_gone = True
            return False
        except PermissionError:
            # EPERM: a member changed its uid (setuid binary); the rest got the signal.
            logger.warning("killpg({}, {}) partly refused (EPERM)", self.pgid, sig.name)
        return True

    def descendants(self) -> list[psutil.Process]:
        """A snapshot of the leader's process tree (empty once the leader is gone)."""
        if _HAS_PROC:
            return _descendants_procfs(self.pid)
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return []

    async def terminate(self, grace_s: float = TERMINATE_GRACE_S) -> None:
        """TERM -> CONT -> wait ``grace_s`` for the leader -> KILL the group -> sweep.

        Cancellation-safe: if the caller is cancelled during the grace period, every KILL is sent
        synchronously before the cancellation propagates, so nothing outlives a cancelled caller
        and nothing hangs.
        """
        # Taken before any signal: afterwards the leader may be gone and its children
        # reparented, leaving nothing to tell us a double-forked grandchild (that also cleared
        # its env) was ours.
        snapshot = self.descendants()
        try:
            self.signal_group(signal.SIGTERM)
            # A stopped (paused) group cannot act on TERM until continued. CONT comes second so the
            # TERM is already pending when it wakes: it runs no more of its own work first.
            self.signal_group(signal.SIGCONT)
            if not self.exited:
                try:
                    async with asyncio.timeout(grace_s):
                        await self.wait()
                except TimeoutError:
                    logger.info("pgid {} ignored SIGTERM for {}s; killing", self.pgid, grace_s)
        except asyncio.CancelledError:
            self.kill_now(snapshot)
            raise
        await self.kill_all(snapshot)

    async def kill_all(self, extra: Iterable[psutil.Process] = ()) -> None:
        """SIGKILL the group, then sweep escaped descendants (marker + ``extra``), bounded."""
        self.signal_group(signal.SIGKILL)
        await sweep(self.marker, extra=extra)

    def kill_now(self, extra: Iterable[psutil.Process] = ()) -> None:
        """Synchronous last resort (cancellation, shutdown): SIGKILL all, wait for nothing."""
        self.signal_group(signal.SIGKILL)
        kill_marked_processes(self.marker, extra=extra)

    def close(self) -> None:
        """Close the pipes and the transport (kills the leader if it is somehow still alive).

        The group is dead and reaped by then, so its number may be reused by an unrelated
        session: no signal goes to it after this.
        """
        self._transport.close()
        self._group_gone = True


# --- finding and killing escaped descendants ---------------------------------------------------


def find_marked_processes(marker: str) -> list[psutil.Process]:
    """Every live process whose environment carries ``MARKER_ENV=marker`` (never this process)."""
    if _HAS_PROC:
        return _find_marked_procfs(marker)
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


def _find_marked_procfs(marker: str) -> list[psutil.Process]:
    # The same scan as above, without psutil's per-process objects and environ parsing: read each
    # /proc/<pid>/environ raw and look for the NUL-delimited entry. It runs after every execution,
    # on the loop, so it is on the latency path of everything else (about 5x faster than psutil).
    entry = b"\0%s=%s\0" % (MARKER_ENV.encode(), marker.encode())
    me = os.getpid()
    found: list[psutil.Process] = []
    for name in os.listdir(_PROC):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            fd = os.open(f"{_PROC}/{name}/environ", os.O_RDONLY)
        except OSError:  # gone, or not ours to read
            continue
        try:
            data = os.read(fd, _ENVIRON_READ)
            while (
                len(data) % _ENVIRON_READ == 0 and data
            ):  # a (rare) environment larger than one read
                more = os.read(fd, _ENVIRON_READ)
                if not more:
                    break
                data += more
        except OSError:  # EACCES (another user's), ESRCH (gone meanwhile)
            continue
        finally:
            os.close(fd)
        if entry in b"\0" + data + b"\0":  # a zombie reads as empty: never matched
            try:
                found.append(psutil.Process(int(name)))
            except psutil.NoSuchProcess:
                continue
    return found


def _descendants_procfs(pid: int) -> list[psutil.Process]:
    # psutil's children(recursive=True) builds its ppid map through Python file objects (~6 ms
    # for 100 processes); this reads the same /proc/<pid>/stat lines raw (~1 ms). It runs on
    # the cancel path before any signal is sent.
    children: dict[int, list[int]] = {}
    for name in os.listdir(_PROC):
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"{_PROC}/{name}/stat", os.O_RDONLY)
        except OSError:
            continue
        try:
            stat = os.read(fd, _STAT_READ)
        except OSError:
            continue
        finally:
            os.close(fd)
        # "pid (comm) state ppid ...": comm may hold spaces and ")", so split after the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split(b" ", 2)
        if len(fields) < 2:
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    found: list[psutil.Process] = []
    todo = list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        todo.extend(children.get(child, ()))
        try:
            found.append(psutil.Process(child))
        except psutil.NoSuchProcess:
            continue
    return found


def _targets(marker: str, extra: Iterable[psutil.Process]) -> list[psutil.Process]:
    targets = {proc.pid: proc for proc in find_marked_processes(marker)}
    for proc in extra:
        # is_running() compares the creation time too, so a recycled pid is never hit.
        if proc.pid not in targets and proc.pid != os.getpid() and proc.is_running():
            targets[proc.pid] = proc
    return list(targets.values())


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
    marker: str, *, extra: Iterable[psutil.Process] = (), wait_s: float = SWEEP_WAIT_S
) -> int:
    """SIGKILL every marked process (and ``extra``), wait until they are gone; returns count.

    Repeats the scan (up to ``SWEEP_MAX_ROUNDS``) because a process may fork between the scan and
    its death. Zombies count as gone: they run no code and hold no pipe.
    """
    killed = 0
    pending_extra = list(extra)
    for _ in range(SWEEP_MAX_ROUNDS):
        targets = _targets(marker, pending_extra)
        pending_extra = []
        if not targets:
            break
        fds: list[int] = []
        no_fd: list[psutil.Process] = []
        for proc in targets:
            fd = _sigkill(proc)
            if fd is not None:
                fds.append(fd)
            else:
                no_fd.append(proc)
        killed += len(targets)
        logger.debug("swept {} process(es) marked {}", len(targets), marker)
        await _wait_pidfds(fds, wait_s)
        if no_fd and not _HAS_PIDFD:
            await asyncio.to_thread(psutil.wait_procs, no_fd, timeout=wait_s)
    return killed
