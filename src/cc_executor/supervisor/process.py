"""Process groups: spawn in a new session, read both pipes, signal the group, kill everything.

Owns: every ``os``/``signal``/``psutil``/subprocess call of the project. A :class:`ProcessGroup` is
one child spawned with ``start_new_session=True`` (so its pgid is its pid, recorded at spawn), its
stdout/stderr pipes delivered to a callback as raw chunks (never split by line, so no line-length
limit exists), its optional stdin pipe, and the means to end it: signal the group, TERM -> CONT ->
grace -> KILL, and a *sweep* that kills escaped descendants (a grandchild that called ``setsid`` or
double-forked leaves the group) found by the environment marker ``CC_EXECUTOR_EXECUTION_ID=<id>``
and by a snapshot of the process tree taken before signalling (reading ``/proc`` for them:
``procfs.py``; killing them: ``sweep.py``). Does not own: states, timeouts, events
(``execution.py``) or policy (``supervisor.py``).

Why not ``create_subprocess_exec`` + StreamReaders: ``Process.wait()`` only returns once *both
the leader has exited and every pipe is closed*, so a background child that inherited stdout
would keep it waiting forever. And why not ``loop.subprocess_exec`` either (what this module used
until round 12): around the ``Popen`` it costs as much again in loop turns (a task that connects
each pipe, a waiter per pipe, the child watcher's hop through ``call_soon_threadsafe``), ~0.15 ms
per spawn on the loop that the child then waits for on two cores. :class:`_Child` does the same
with one ``Popen`` (vfork), a selector reader per pipe and a pidfd for the exit: it tells us the
moment the leader exits, independently of pipe EOF, and hands us each chunk read (up to
``PIPE_BYTES``) without a second buffer or a reader task per pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from subprocess import DEVNULL, PIPE
from typing import Literal

import psutil
from loguru import logger

from cc_executor.supervisor.heap import heap_trimmer
from cc_executor.supervisor.procfs import (
    MARKER_ENV,
    descendant_pids,
    floor_and_mark,
    forked_since,
    leader_gone,
    leader_spawned,
)
from cc_executor.supervisor.sweep import (
    EarlyPass,
    Pinned,
    early_pass,
    kill_marked_processes,
    signal_outside_group,
    sweep,
)

__all__ = ["PIPE_BYTES", "TERMINATE_GRACE_S", "OutputHandler", "ProcessGroup", "Stream"]

TERMINATE_GRACE_S = 5.0  # default time between SIGTERM and SIGKILL to the group

Stream = Literal["stdout", "stderr"]
OutputHandler = Callable[[Stream, bytes], None]

PIPE_BYTES = 1024 * 1024  # stdout/stderr pipe buffer and read size (Linux default max)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class _GroupProtocol(asyncio.BaseProtocol):
    """The child's events as events and output callbacks; also the stdin pipe's protocol
    (``pause_writing`` / ``resume_writing`` / ``connection_lost`` of that transport).

    Events, not futures: each waiter gets its own future (cancelling one cancels no other), and
    is woken in the next loop turn; ``asyncio.shield`` around a shared future took two.
    """

    def __init__(self, on_output: OutputHandler, loop: asyncio.AbstractEventLoop) -> None:
        self._on_output = on_output
        self.exited = asyncio.Event()
        self.on_exit: Callable[[], None] | None = None  # run first, as soon as it is reaped
        self.stdout_closed = asyncio.Event()
        self.stderr_closed = asyncio.Event()
        self.stdin_lost = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._loop = loop

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._on_output("stdout" if fd == 1 else "stderr", data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 0:
            self.stdin_lost = True
            self._release_drain()
        else:
            (self.stdout_closed if fd == 1 else self.stderr_closed).set()

    def process_exited(self) -> None:
        if self.exited.is_set():
            return
        if self.on_exit is not None:
            self.on_exit()
        self.exited.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.pipe_connection_lost(0, exc)  # only the stdin transport calls this

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


def _widen(fd: int) -> None:
    """Give an output pipe ``PIPE_BYTES`` of kernel buffer (it is read in chunks that large).

    With the default 64 KiB pipe a fast writer fills it, blocks, and wakes us for every 64 KiB
    (two context switches and one loop iteration each) on a machine where the writer, the daemon
    and the client share two cores. A larger pipe lets the writer run ahead and lets one read take
    what accumulated; the chunker still cuts it into pieces of at most 64 KiB. Best effort: an
    unprivileged process past its pipe-buffer quota keeps the default size.
    """
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_BYTES)


def _popen(
    argv: Sequence[str], *, cwd: Path | str | None, env: Mapping[str, str], stdin: bool
) -> subprocess.Popen[bytes]:
    """Fork (vfork) and exec ``argv`` as a new session leader, its output on two pipes.

    On the loop's thread, as ``loop.subprocess_exec`` does it: ``Popen`` returns once the
    child has exec'd (or raises what exec raised), which takes a fraction of a millisecond.
    """
    return subprocess.Popen(
        list(argv),
        bufsize=0,
        stdin=PIPE if stdin else DEVNULL,
        stdout=PIPE,
        stderr=PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )


class _Child:
    """The leader on the loop: its output pipes read by selector callbacks, its exit seen on a
    pidfd (or, where there are none, by a thread blocked in ``waitpid``), its stdin a write
    transport when asked for.

    Reaps the leader itself and records the status on the ``Popen`` (so ``subprocess`` never
    waits for that pid again, which after a reuse could be another child of ours).
    """

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        protocol: _GroupProtocol,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.popen = popen
        self.stdin: asyncio.WriteTransport | None = None
        self._protocol = protocol
        self._loop = loop
        self._outputs: dict[int, int] = {}  # 1/2 -> fd, while open
        self._pidfd = -1
        try:
            for number, pipe in ((1, popen.stdout), (2, popen.stderr)):
                assert pipe is not None
                fd = pipe.fileno()
                os.set_blocking(fd, False)
                _widen(fd)
                self._outputs[number] = fd
                loop.add_reader(fd, self._read, number, fd)
            self._watch_exit()
        except BaseException:
            self.close()
            raise

    def _watch_exit(self) -> None:
        try:
            self._pidfd = os.pidfd_open(self.popen.pid)
        except (AttributeError, OSError):  # no pidfds (kernel < 5.3), or out of fds
            threading.Thread(
                target=self._wait_in_thread, name=f"waitpid-{self.popen.pid}", daemon=True
            ).start()
            return
        self._loop.add_reader(self._pidfd, self._reap)

    def _read(self, number: int, fd: int) -> None:
        try:
            data = os.read(fd, PIPE_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO and the like: nothing more will come
            data = b""
        if data:
            self._protocol.pipe_data_received(number, data)
            return
        self._close_output(number)
        self._protocol.pipe_connection_lost(number, None)

    def _close_output(self, number: int) -> None:
        fd = self._outputs.pop(number, None)
        if fd is None:
            return
        self._loop.remove_reader(fd)
        pipe = self.popen.stdout if number == 1 else self.popen.stderr
        assert pipe is not None
        pipe.close()

    def _waitpid(self) -> int:
        """Reap the leader (blocks until it exits); its wait status."""
        try:
            return os.waitpid(self.popen.pid, 0)[1]
        except ChildProcessError:  # reaped elsewhere; its status is lost
            return 255 << 8

    def _reap(self) -> None:
        self._stop_watching()
        self._exited(self._waitpid())  # readable pidfd: it has exited, this does not block

    def _wait_in_thread(self) -> None:
        status = self._waitpid()
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            self._loop.call_soon_threadsafe(self._exited, status)

    def _exited(self, status: int) -> None:
        if self.popen.returncode is None:
            self.popen.returncode = os.waitstatus_to_exitcode(status)
        self._protocol.process_exited()

    def _stop_watching(self) -> None:
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1

    def close(self) -> None:
        """Stop reading and close every pipe; a leader still running is killed (and reaped
        when its exit is seen, like any other)."""
        for number in list(self._outputs):
            self._close_output(number)
        if self.stdin is not None:
            self.stdin.close()
        elif self.popen.stdin is not None:
            self.popen.stdin.close()
        if self.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()


class ProcessGroup:
    """One spawned child leading its own session and process group; see the module docstring."""

    def __init__(self, child: _Child, protocol: _GroupProtocol, *, marker: str) -> None:
        self._child = child
        self._protocol = protocol
        self.marker = marker
        pid = child.popen.pid
        self.pid: int = pid
        # start_new_session=True makes the child call setsid() before exec, and Popen returns only
        # after exec succeeded, so the group exists and pgid == pid from here on.
        self.pgid: int = pid
        self.spawned_at = time.monotonic()
        self._group_gone = False
        self._closed = False
        # Set by begin_terminate: the tree as it was before the SIGTERM, and the marker pass
        # run while the group dies (for the sweep after it).
        self._snapshot: Pinned | None = None
        self._early: EarlyPass | None = None
        self._trimmer = heap_trimmer()
        self._trimmer.opened()
        leader_spawned(pid, marker)
        # Once reaped (process_exited comes after waitpid) the pid may be handed out again, so
        # sweeps must read it like any other process from then on.
        protocol.on_exit = lambda: leader_gone(pid)

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
        protocol = _GroupProtocol(on_output, loop)
        popen = _popen(argv, cwd=cwd, env=child_env, stdin=stdin)
        # The group (and with it the leader's registration and exit hook) exists before the
        # only await below: a leader that exits meanwhile is seen like any other.
        group = cls(_Child(popen, protocol, loop), protocol, marker=marker)
        if popen.stdin is not None:
            try:
                group._child.stdin, _ = await loop.connect_write_pipe(lambda: protocol, popen.stdin)
            except BaseException:
                group.close()
                raise
        logger.debug("spawned pid={} pgid={} marker={}", group.pid, group.pgid, marker)
        return group

    # --- state of the leader and the pipes -------------------------------------------------------

    @property
    def returncode(self) -> int | None:
        """The leader's return code (negative: killed by that signal), None while it runs."""
        return self._child.popen.returncode

    @property
    def exited(self) -> bool:
        return self._protocol.exited.is_set()

    async def wait(self) -> int:
        """Wait for the leader to exit (not for the pipes); returns its return code."""
        await self._protocol.exited.wait()
        code = self._child.popen.returncode
        assert code is not None
        return code

    async def wait_output_closed(self) -> None:
        """Wait until stdout and stderr reached EOF (every writer holding them is gone)."""
        await self._protocol.stdout_closed.wait()
        await self._protocol.stderr_closed.wait()

    # --- stdin -----------------------------------------------------------------------------------

    def _stdin(self) -> asyncio.WriteTransport:
        pipe = self._child.stdin
        if pipe is None or pipe.is_closing() or self._protocol.stdin_lost:
            raise BrokenPipeError("stdin is closed")
        return pipe

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

    def begin_terminate(self) -> None:
        """SIGTERM + SIGCONT to the group now, and to what left it (found in the tree, or by
        its marker: :func:`~cc_executor.supervisor.sweep.early_pass`).

        Synchronous, so a cancel signals the group the moment it is asked, not a few loop turns
        later. Idempotent: the group gets one SIGTERM however often it is called (a second one
        makes some programs skip their graceful exit). The rest (grace, SIGKILL, the sweep) is
        :meth:`terminate`'s.
        """
        if self._snapshot is not None:
            return
        # Listed before any signal: afterwards the leader may be gone and its children
        # reparented, leaving nothing to tell us a double-forked grandchild (that also cleared
        # its env) was ours. Pinned (pidfds) only after the signals: the group is dying
        # meanwhile, and each signalled process takes about a millisecond to be gone.
        floor, mark = floor_and_mark(self.pid, self.spawned_at)
        # Nothing created since the leader (a command that never forks): no tree to walk,
        # nothing that could have left the group.
        forked = forked_since(floor, mark)
        tree = descendant_pids(self.pid) if forked else []
        self.signal_group(signal.SIGTERM)
        # A stopped (paused) group cannot act on TERM until continued. CONT comes second so the
        # TERM is already pending when it wakes: it runs no more of its own work first.
        self.signal_group(signal.SIGCONT)
        # What left the group but is still in the tree (``setsid``) gets the same signals now;
        # what also left the tree is found by its marker (the early pass), while the group dies.
        signal_outside_group(tree, self.pgid, signal.SIGTERM, signal.SIGCONT)
        if forked and not self._group_gone:
            self._early = early_pass(self.marker, floor, tree, mark)
        if self._early is not None:
            signal_outside_group(
                self._early.found[0], self.pgid, signal.SIGTERM, signal.SIGCONT, skip=set(tree)
            )
        self._snapshot = Pinned(tree)

    async def terminate(self, grace_s: float = TERMINATE_GRACE_S) -> None:
        """TERM -> CONT -> wait ``grace_s`` for the leader -> KILL the group -> sweep.

        Cancellation-safe: if the caller is cancelled during the grace period, every KILL is sent
        synchronously before the cancellation propagates, so nothing outlives a cancelled caller
        and nothing hangs.
        """
        self.begin_terminate()
        try:
            if not self.exited:
                try:
                    async with asyncio.timeout(grace_s):
                        await self.wait()
                except TimeoutError:
                    logger.info("pgid {} ignored SIGTERM for {}s; killing", self.pgid, grace_s)
        except asyncio.CancelledError:
            self.kill_now()
            raise
        await self.kill_all()

    async def kill_all(self, extra: Iterable[psutil.Process] = ()) -> None:
        """SIGKILL the group, then sweep escaped descendants (marker + ``extra``), bounded.

        After :meth:`begin_terminate`, its snapshot joins ``extra`` and its early pass serves as
        the sweep's first.
        """
        self.signal_group(signal.SIGKILL)
        early, self._early = self._early, None
        floor, mark = floor_and_mark(self.pid, self.spawned_at)
        await sweep(
            self.marker, extra=extra, floor=floor, prior=early, pinned=self._snapshot, mark=mark
        )

    def kill_now(self, extra: Iterable[psutil.Process] = ()) -> None:
        """Synchronous last resort (cancellation, shutdown): SIGKILL all, wait for nothing."""
        self.signal_group(signal.SIGKILL)
        if self._snapshot is not None:
            self._snapshot.kill_now()
        kill_marked_processes(self.marker, extra=extra)

    def close(self) -> None:
        """Close the pipes and the transport (kills the leader if it is somehow still alive).

        The group is dead and reaped by then, so its number may be reused by an unrelated
        session: no signal goes to it after this.
        """
        self._child.close()
        if self._snapshot is not None:
            self._snapshot.close()
        leader_gone(self.pid)
        self._group_gone = True
        if not self._closed:
            self._closed = True
            self._trimmer.closed()
