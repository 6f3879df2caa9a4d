"""The Supervisor: the one async API every door calls to run and control executions.

Owns: validating what to run (cwd, program, ids), the limit on running executions, composing the
child environment, allocating ids, starting each execution's task in one ``asyncio.TaskGroup``
(structured concurrency: no task without an owner), looking executions up, forgetting the oldest
finished ones, and shutting everything down. Does not own: the life of one execution
(``execution.py``), OS calls (``process.py``), wire shapes or connections (``protocol``,
``server``).

The supervisor never reads ``os.environ``: the caller (``create_app``) passes ``base_env``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Protocol

from loguru import logger

from cc_executor.errors import (
    ExecutionNotFound,
    InvalidParams,
    InvalidTransition,
    LimitReached,
    ServiceError,
)
from cc_executor.supervisor.eventlog import EVENT_LOG_MAX_BYTES, EVENT_LOG_MEMORY_BYTES, EventLog
from cc_executor.supervisor.execution import Execution, ExecutionId, ExecutionSpec
from cc_executor.supervisor.process import TERMINATE_GRACE_S
from cc_executor.supervisor.procfs import MARKER_ENV
from cc_executor.supervisor.states import ExecutionState, is_terminal

__all__ = [
    "DEFAULT_PATH",
    "FINISHED_EXECUTIONS_KEPT",
    "LIST_LIMIT",
    "MAX_EXECUTIONS",
    "SHUTDOWN_MARGIN_S",
    "TOKEN_ENV",
    "ExecutionObserver",
    "Supervisor",
]

MAX_EXECUTIONS = 64  # running at once, all connections; each holds a process tree and two pipes
FINISHED_EXECUTIONS_KEPT = 1000  # finished ones stay for status/attach; oldest forgotten first
LIST_LIMIT = 100  # default page of list(); newest first
SHUTDOWN_MARGIN_S = 5.0  # beyond the TERM grace: time for the KILL, the sweep and the pipe drain
EXECUTION_ID_MAX_CHARS = 200  # client-chosen ids travel in env vars and file names
# The child's PATH when the caller passes no base env: the usual Debian default (never os.environ).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TOKEN_ENV = "CC_EXECUTOR_TOKEN"  # noqa: S105 (a variable name) the daemon's secret; never inherited


class ExecutionObserver(Protocol):
    """Sees every execution the supervisor starts (the durable store's recorder implements it).

    ``watch`` is called once the execution has spawned (its log already holds
    ``process.started``); ``drain`` is awaited before the supervisor discards its event logs
    (shutdown), so whatever the observer still has to read from them is read first.
    """

    def watch(self, execution: Execution) -> None: ...

    async def drain(self) -> None: ...


class Supervisor:
    """Runs executions as supervised process groups. Use as ``async with Supervisor(...) as s``."""

    def __init__(
        self,
        *,
        shell: str,
        terminate_grace_s: float = TERMINATE_GRACE_S,
        max_executions: int = MAX_EXECUTIONS,
        event_log_memory_bytes: int = EVENT_LOG_MEMORY_BYTES,
        event_log_max_bytes: int = EVENT_LOG_MAX_BYTES,
        spool_dir: Path | None = None,
        finished_executions_kept: int = FINISHED_EXECUTIONS_KEPT,
        base_env: Mapping[str, str] | None = None,
        observer: ExecutionObserver | None = None,
    ) -> None:
        self.shell = shell
        self.observer = observer
        self.terminate_grace_s = terminate_grace_s
        self.max_executions = max_executions
        self._log_memory_bytes = event_log_memory_bytes
        self._log_max_bytes = event_log_max_bytes
        self._spool_dir = spool_dir
        self._finished_kept = finished_executions_kept
        self._base_env: dict[str, str] = (
            dict(base_env) if base_env is not None else {"PATH": DEFAULT_PATH}
        )
        self._executions: dict[ExecutionId, Execution] = {}  # insertion order = creation order
        self._live: set[ExecutionId] = set()  # not yet done (pending, running, paused, ending)
        self._finished: deque[ExecutionId] = deque()
        self._tasks: dict[ExecutionId, asyncio.Task[None]] = {}
        self._task_group: asyncio.TaskGroup | None = None
        self._closing = False

    # --- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Supervisor:
        task_group = asyncio.TaskGroup()
        await task_group.__aenter__()
        self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task_group = self._task_group
        self._closing = True
        try:
            if exc_type is None:
                await self.shutdown()
            # Otherwise (the owner was cancelled or failed) there is no time for grace: the
            # TaskGroup cancels every execution task, and a cancelled run() sends SIGKILL to its
            # group and sweeps synchronously before recording completion.
        finally:
            if task_group is not None:
                if exc is not None and not isinstance(exc, asyncio.CancelledError):
                    # The owner failed: cancel every execution task (each KILLs its group and
                    # records the end) without handing the owner's exception to the TaskGroup,
                    # which would wrap it in an ExceptionGroup the owner never raised.
                    for task in list(self._tasks.values()):
                        task.cancel()
                    await task_group.__aexit__(None, None, None)
                else:
                    await task_group.__aexit__(exc_type, exc, tb)
                # A task cancelled before its first step never ran run()'s cleanup.
                for execution_id in list(self._live):
                    self._executions[execution_id].abandon()
            if self.observer is not None:
                try:
                    async with asyncio.timeout(SHUTDOWN_MARGIN_S):
                        await self.observer.drain()
                except TimeoutError:
                    logger.error("shutdown: the observer did not drain in time")
            for execution in self._executions.values():
                execution.log.discard()  # spool files do not outlive the supervisor

    async def shutdown(self) -> None:
        """Cancel everything still running (TERM, grace, KILL, sweep) and wait, bounded."""
        self._closing = True
        live = [self._executions[eid] for eid in self._live]
        for execution in live:
            # InvalidTransition: already ending (timeout, completion); its task ends on its own.
            with contextlib.suppress(InvalidTransition):
                execution.cancel("supervisor_shutdown")
        # One still spawning has no task yet; it starts canceled and the TaskGroup waits for it.
        live = [execution for execution in live if execution.id in self._tasks]
        if not live:
            return
        logger.info("shutdown: stopping {} execution(s)", len(live))
        try:
            async with asyncio.timeout(self.terminate_grace_s + SHUTDOWN_MARGIN_S):
                for execution in live:
                    await execution.wait()
        except TimeoutError:
            # Cancelling run() KILLs its group synchronously and records the completion.
            stuck = list(self._tasks.values())
            logger.warning("shutdown: {} execution(s) did not end in time; cancelling", len(stuck))
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=SHUTDOWN_MARGIN_S)

    # --- starting --------------------------------------------------------------------------------

    def shell_argv(self, command: str) -> list[str]:
        """The argv that runs ``command`` with the configured shell."""
        return [self.shell, "-c", command]

    async def execute(self, spec: ExecutionSpec) -> Execution:
        """Validate, spawn, append ``process.started`` and start supervising; returns at once.

        Raises ``InvalidParams`` (bad argv/cwd/env/id), ``LimitReached`` (too many running),
        ``ServiceError`` (spawn failed, or the supervisor is not running).
        """
        if self._task_group is None or self._closing:
            raise ServiceError("the supervisor is not running")
        if spec.execution_id is not None:
            existing = self._executions.get(ExecutionId(spec.execution_id))
            if existing is not None:
                if existing.spec.argv == spec.argv:
                    return existing  # idempotent retry of the same request
                raise InvalidParams(
                    f"execution_id {spec.execution_id!r} is already used by another command",
                    execution_id=spec.execution_id,
                )
        if len(self._live) >= self.max_executions:
            raise LimitReached(
                f"too many running executions (limit {self.max_executions})",
                limit=self.max_executions,
                running=len(self._live),
            )
        execution_id = ExecutionId(spec.execution_id or uuid.uuid4().hex)
        env = self._child_env(spec, execution_id)
        _validate(spec, env)
        execution = Execution(
            spec,
            execution_id,
            log=EventLog(
                execution_id,
                memory_bytes=self._log_memory_bytes,
                max_bytes=self._log_max_bytes,
                spool_dir=self._spool_dir,
            ),
            terminate_grace_s=self.terminate_grace_s,
            on_finished=self._on_finished,
        )
        # Registered before the spawn awaits, so a concurrent retry with the same id finds it and
        # the slot counts against the limit.
        self._executions[execution_id] = execution
        self._live.add(execution_id)
        try:
            await execution.start(env)
        except BaseException:
            del self._executions[execution_id]
            self._live.discard(execution_id)
            execution.log.discard()
            raise
        # No await between the spawn and handing the execution to its owner: nothing can leak.
        self._tasks[execution_id] = self._task_group.create_task(
            execution.run(), name=f"execution:{execution_id}"
        )
        if self.observer is not None:
            self.observer.watch(execution)
        if self._closing and not is_terminal(execution.state):  # shutdown began meanwhile
            execution.cancel("supervisor_shutdown")
        return execution

    def _child_env(self, spec: ExecutionSpec, execution_id: str) -> dict[str, str]:
        env = {key: value for key, value in self._base_env.items() if key != TOKEN_ENV}
        env.update(spec.env)
        if spec.env_hook is not None:
            env = spec.env_hook(env, execution_id)
            env.pop(TOKEN_ENV, None)  # whatever the hook did, the daemon's secret stays here
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.pop(MARKER_ENV, None)  # set by ProcessGroup.spawn; never chosen by the caller
        return env

    def _on_finished(self, execution: Execution) -> None:
        self._live.discard(execution.id)
        self._tasks.pop(execution.id, None)
        self._finished.append(execution.id)
        while len(self._finished) > self._finished_kept:
            forgotten = self._executions.pop(self._finished.popleft(), None)
            if forgotten is not None:
                forgotten.log.discard()

    # --- looking up ------------------------------------------------------------------------------

    @property
    def running_count(self) -> int:
        """Executions not yet finished (spawning, running, paused, or being killed)."""
        return len(self._live)

    def get(self, execution_id: str) -> Execution:
        """The execution with this id; ``ExecutionNotFound`` (-32003) when unknown or forgotten."""
        execution = self._executions.get(ExecutionId(execution_id))
        if execution is None:
            raise ExecutionNotFound(
                f"execution {execution_id!r} not found", execution_id=execution_id
            )
        return execution

    def find(self, execution_id: str) -> Execution | None:
        """The execution with this id, or ``None`` (no exception: for hot paths)."""
        return self._executions.get(ExecutionId(execution_id))

    def __contains__(self, execution_id: object) -> bool:
        return execution_id in self._executions

    def list(
        self, states: Iterable[ExecutionState | str] | None = None, limit: int = LIST_LIMIT
    ) -> builtins.list[Execution]:
        """Known executions, newest first, optionally only those in ``states``."""
        wanted: frozenset[ExecutionState] | None = None
        if states is not None:
            try:
                wanted = frozenset(ExecutionState(state) for state in states)
            except ValueError as exc:
                raise InvalidParams(f"unknown state: {exc}") from None
        found: builtins.list[Execution] = []
        for execution in reversed(self._executions.values()):
            if len(found) >= limit:
                break
            if wanted is None or execution.state in wanted:
                found.append(execution)
        return found

    # --- control ---------------------------------------------------------------------------------

    async def pause(self, execution_id: str) -> Execution:
        """SIGSTOP the group (``InvalidTransition`` unless running)."""
        execution = self.get(execution_id)
        execution.pause()
        return execution

    async def resume(self, execution_id: str) -> Execution:
        """SIGCONT the group (``InvalidTransition`` unless paused)."""
        execution = self.get(execution_id)
        execution.resume()
        return execution

    async def cancel(self, execution_id: str) -> Execution:
        """Record the cancel and SIGTERM the group; ``process.completed`` follows in the log."""
        execution = self.get(execution_id)
        execution.cancel()
        return execution

    async def write_input(self, execution_id: str, data: bytes, eof: bool = False) -> int:
        """Write to stdin (``InvalidTransition`` if stdin was not requested or is closed)."""
        return await self.get(execution_id).write_input(data, eof=eof)


def _validate(spec: ExecutionSpec, env: Mapping[str, str]) -> None:
    """Raise ``InvalidParams`` with a clear message for anything exec would reject."""
    if not spec.argv or not all(isinstance(arg, str) for arg in spec.argv):
        raise InvalidParams("argv must be a non-empty list of strings")
    if any("\0" in arg for arg in spec.argv):
        raise InvalidParams("argv must not contain NUL characters")
    eid = spec.execution_id
    if eid is not None and not (0 < len(eid) <= EXECUTION_ID_MAX_CHARS and eid.isprintable()):
        raise InvalidParams(
            f"execution_id must be 1..{EXECUTION_ID_MAX_CHARS} printable characters",
            execution_id=eid,
        )
    for name, seconds in (("timeout", spec.timeout), ("idle_timeout", spec.idle_timeout)):
        if seconds is not None and not seconds > 0:
            raise InvalidParams(f"{name} must be positive", **{name: seconds})
    for key, value in env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise InvalidParams(f"invalid environment variable {key!r}", name=key)
    cwd = Path(spec.cwd) if spec.cwd is not None else None
    if cwd is not None and not cwd.is_dir():
        raise InvalidParams(f"cwd {str(cwd)!r} does not exist or is not a directory", cwd=str(cwd))
    # The program itself is not looked up here (a PATH walk per request): exec searches the
    # child's PATH (or resolves a relative path against the child's cwd) anyway, and the spawn
    # maps ENOENT/EACCES to the same InvalidParams (``execution.program_error``).
