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

Why a :class:`asyncio.SubprocessProtocol` instead of ``create_subprocess_exec`` + StreamReaders:
``Process.wait()`` only returns once *both the leader has exited and every pipe is closed*, so a
background child that inherited stdout would keep it waiting forever. The protocol tells us the
moment the leader exits (``process_exited``), independently of pipe EOF, and hands us each chunk
the loop read (up to ``PIPE_BYTES``) without a second buffer or a reader task per pipe.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from subprocess import DEVNULL, PIPE
from typing import Literal, cast

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


def _widen_pipes(transport: asyncio.SubprocessTransport) -> None:
    """Give stdout/stderr ``PIPE_BYTES`` of kernel buffer and read them in chunks that large.

    With the default 64 KiB pipe a fast writer fills it, blocks, and wakes us for every 64 KiB
    (two context switches and one loop iteration each) on a machine where the writer, the daemon
    and the client share two cores. A larger pipe lets the writer run ahead and lets one read take
    what accumulated; the chunker still cuts it into pieces of at most 64 KiB. Best effort: an
    unprivileged process past its pipe-buffer quota keeps the default size.
    """
    for fd in (1, 2):
        pipe = transport.get_pipe_transport(fd)
        if pipe is None:
            continue
        try:
            fileno = pipe.get_extra_info("pipe").fileno()
            fcntl.fcntl(fileno, _F_SETPIPE_SZ, PIPE_BYTES)
        except (OSError, AttributeError, ValueError):
            continue
        if hasattr(pipe, "max_size"):  # asyncio's read pipe transport reads max_size per call
            pipe.max_size = PIPE_BYTES


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
        # Reaped by then (the loop's child watcher reports an exit after waitpid): the pid may
        # be handed out again, so sweeps must read it like any other process from now on.
        protocol.exited.add_done_callback(lambda _: leader_gone(pid))

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
        _widen_pipes(transport)
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
        self._transport.close()
        if self._snapshot is not None:
            self._snapshot.close()
        leader_gone(self.pid)
        self._group_gone = True
        if not self._closed:
            self._closed = True
            self._trimmer.closed()
