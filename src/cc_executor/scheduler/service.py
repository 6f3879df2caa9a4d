"""The service every door calls: live executions from the supervisor, past ones from the store.

Owns: the daemon-side API shared by the WebSocket, MCP and REST doors and the embedded Python
API: ``execute`` (hooks, timeout prediction, spec building, then the supervisor), ``status``,
``list``, ``wait``, control, event replay (live log, or the store once the execution is no longer
in memory), crash recovery at start, and the lifetimes of the store, the recorder and the
supervisor (``async with service``). Does not own: processes (``supervisor/``), storage I/O
(``storage/``), wire shapes (``protocol/``), or task-list scheduling (``task_lists.py``, which
calls back into this service).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from loguru import logger

from cc_executor.errors import CommandNotAllowed, ExecutionNotFound, InvalidTransition
from cc_executor.protocol import ExecuteParams
from cc_executor.protocol.jsonrpc import encode_notification
from cc_executor.protocol.names import Notification
from cc_executor.scheduler.agent_spec import ClaudeRunConfig, build_execute_spec
from cc_executor.scheduler.hooks.gate import HookGate
from cc_executor.scheduler.recorder import StoreRecorder, record_of
from cc_executor.storage.base import LOST, ExecutionRecord, PruneReport, Store, StoredEvent
from cc_executor.supervisor import Event, Execution, ExecutionSpec, Gap, Supervisor
from cc_executor.supervisor.recovery import kill_leftovers, pid_alive

__all__ = [
    "REPLAY_PAGE_EVENTS",
    "UNFINISHED_STATES",
    "WAIT_MAX_S",
    "ExecutionService",
    "Retention",
    "TimeoutPlanner",
    "embedded_owner",
    "record_info",
]

REPLAY_PAGE_EVENTS = 256  # events per store read while replaying a past execution
HEARTBEAT_S = 5.0  # how often a running service tells the store it is alive
OWNER_TTL_S = 30.0  # a service silent this long is dead: others recover what it ran
PRUNE_INTERVAL_S = 3600.0  # retention runs at start and then this often
WAIT_MAX_S = 3600.0  # longest single wait() a door may ask for
RECOVERY_LIMIT = 100_000  # unfinished executions looked at per recovery round
UNFINISHED_STATES = ("pending", "running", "paused", "waiting_for_limit")


def _embedded_process_gone(owner: str) -> bool:
    """An embedded owner of this host whose process has exited is dead without waiting for its
    heartbeat to expire (``embedded:<host>:<pid>:<random>``). A live pid proves nothing (it may
    have been reused), so then the heartbeat decides."""
    kind, _, rest = owner.partition(":")
    host, _, rest = rest.partition(":")
    pid, _, _ = rest.partition(":")
    if kind != "embedded" or host != socket.gethostname() or not pid.isdigit():
        return False
    return not pid_alive(int(pid))


def embedded_owner() -> str:
    """A unique owner id for a service inside some other program (Python API, stdio MCP)."""
    return f"embedded:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Retention:
    """What :meth:`ExecutionService.prune` keeps; ``None`` means no limit of that kind."""

    max_age_s: float | None = None
    keep_last: int | None = None
    max_event_bytes: int | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.max_age_s, self.keep_last, self.max_event_bytes))


class TimeoutPlanner(Protocol):
    """What the service needs of timeout prediction (``scheduler/timeouts``)."""

    def classify(self, params: ExecuteParams) -> str: ...
    async def predict(self, category: str, params: ExecuteParams) -> float | None: ...
    async def observe(self, record: ExecutionRecord) -> None: ...


def record_info(record: ExecutionRecord) -> dict[str, Any]:
    """The ``status`` view of a stored execution (the same keys as ``Execution.info``)."""
    info: dict[str, Any] = {
        "execution_id": record.execution_id,
        "state": record.state,
        "command": record.command,
        "pid": record.pid,
        "pgid": record.pgid,
        "exit_code": record.exit_code,
        "signal": record.signal,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "execution_time": record.execution_time,
        "reason": record.reason,
        "last_seq": record.last_seq,
        "metadata": record.metadata,
        "attempt": record.attempt,
        "agent": record.agent,
        "output_bytes": record.output_bytes,
        "timeout": record.timeout,
    }
    if record.category is not None:
        info["category"] = record.category
    if record.timeout_predicted:
        info["timeout_predicted"] = True
    result = dict(record.result or {})
    if record.agent is not None:
        info["session_id"] = result.pop("session_id", None)
        info["failure"] = result.pop("failure", None)
        info["result"] = result or None
    return info


class ExecutionService:
    """Use as ``async with ExecutionService(...) as service``; see the module docstring."""

    def __init__(
        self,
        *,
        supervisor: Supervisor,
        store: Store,
        claude: ClaudeRunConfig | None = None,
        hooks: HookGate | None = None,
        timeouts: TimeoutPlanner | None = None,
        owner: str | None = None,
        retention: Retention | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        owner_ttl_s: float = OWNER_TTL_S,
    ) -> None:
        self.supervisor = supervisor
        self.store = store
        # Who runs what: every record this service writes carries its owner id, and recovery
        # touches only what this owner's previous incarnation or a dead owner left behind.
        self.owner = owner or embedded_owner()
        self.retention = retention or Retention()
        self.heartbeat_s = heartbeat_s
        self.owner_ttl_s = owner_ttl_s
        self.claude = claude or ClaudeRunConfig()
        self.hooks = hooks
        self.timeouts = timeouts
        self.recorder = StoreRecorder(
            store,
            owner=self.owner,
            on_persisted=self._persisted,
            on_state=hooks.state_changed if hooks is not None else None,
        )
        supervisor.observer = self.recorder
        self._tasks: asyncio.TaskGroup | None = None
        self._recorder_task: asyncio.Task[None] | None = None
        self._maintenance_task: asyncio.Task[None] | None = None
        self._finished_callbacks: list[Callable[[Execution], Awaitable[None]]] = []
        self.recovered: list[str] = []  # ids this service marked lost
        self._recover_lock = asyncio.Lock()

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.store.open()
        try:
            await self.store.heartbeat(self.owner, time.time())
            await self.recover()
            self._tasks = asyncio.TaskGroup()
            await self._tasks.__aenter__()
            self._recorder_task = self._tasks.create_task(self.recorder.run(), name="recorder")
            self._maintenance_task = self._tasks.create_task(self._maintain(), name="maintenance")
            if self.hooks is not None:
                self.hooks.bind(self._spawn)
            await self.supervisor.__aenter__()
        except BaseException:
            await self._close_tasks()
            await self.store.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.supervisor.__aexit__(exc_type, exc, tb)  # drains the recorder
        finally:
            await self._close_tasks()
            with contextlib.suppress(Exception):  # the store may be what failed
                await self.store.forget_owner(self.owner)
            await self.store.close()

    async def _close_tasks(self) -> None:
        if self._recorder_task is not None:
            self._recorder_task.cancel()
        if self._maintenance_task is not None:
            self._maintenance_task.cancel()
        if self._tasks is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._tasks.__aexit__(None, None, None)
            self._tasks = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background, owned by the service (hooks, statistics)."""
        if self._tasks is None:
            coro.close()
            return
        self._tasks.create_task(coro)

    def on_finished(self, callback: Callable[[Execution], Awaitable[None]]) -> None:
        """Run ``callback`` once a finished execution is fully in the store."""
        self._finished_callbacks.append(callback)

    async def _persisted(self, execution: Execution) -> None:
        if self.timeouts is not None:
            await self.timeouts.observe(record_of(execution))
        if self.hooks is not None:
            await self.hooks.execution_finished(execution)
        for callback in self._finished_callbacks:
            await callback(execution)

    # --- recovery ------------------------------------------------------------------------------

    async def dead_owner(self, owner: str | None, heartbeats: dict[str, float]) -> bool:
        """True when ``owner`` cannot be running what the store says it runs.

        Our own id is dead for anything we do not hold in memory: it is our previous
        incarnation's (a daemon restarted on the same state dir and port; the pid-file lock
        makes that slot ours alone). The callers skip what they hold. So is an owner whose
        heartbeat is older than ``owner_ttl_s`` (:data:`OWNER_TTL_S`), and records written
        before owners existed.
        """
        if owner is None or owner == self.owner:
            return True
        if _embedded_process_gone(owner):
            return True
        seen = heartbeats.get(owner)
        return seen is None or seen < time.time() - self.owner_ttl_s

    async def recover(self) -> list[str]:
        """Mark what a dead owner left running as ``lost``; kill what is left of it here.

        Runs before anything new starts, then periodically (an embedded user of the same store
        may die at any time). A leftover process is killed only when it carries the execution's
        marker (see :func:`~cc_executor.supervisor.process.kill_leftovers`).
        """
        async with self._recover_lock:  # the maintenance round and an explicit call never overlap
            return await self._recover()

    async def _recover(self) -> list[str]:
        lost: list[str] = []
        heartbeats = await self.store.owner_heartbeats()
        records = await self.store.list_executions(states=UNFINISHED_STATES, limit=RECOVERY_LIMIT)
        for record in records:
            if self.live(record.execution_id) is not None:
                continue
            if not await self.dead_owner(record.owner, heartbeats):
                continue
            killed = await kill_leftovers(record.execution_id, record.pgid)
            await self._mark_lost(record, killed)
            lost.append(record.execution_id)
        if lost:
            logger.warning("recovered {} execution(s) of a dead owner as lost", len(lost))
        self.recovered.extend(lost)
        return lost

    async def recover_execution(self, execution_id: str) -> bool:
        """Settle one execution a dead owner left, known by id alone (a task list's interrupted
        attempt may have died before its record was stored); True when it was marked lost."""
        if self.live(execution_id) is not None:
            return False
        record = await self.store.get_execution(execution_id)
        if record is not None and record.state not in UNFINISHED_STATES:
            return False
        pgid = record.pgid if record is not None else None
        killed = await kill_leftovers(execution_id, pgid)
        if record is None:
            record = ExecutionRecord(
                execution_id=execution_id, state="pending", command="", created_at=time.time()
            )
        await self._mark_lost(record, killed)
        self.recovered.append(execution_id)
        return True

    async def _maintain(self) -> None:
        """Heartbeat; now and then recover dead owners' executions and apply retention."""
        last_prune = 0.0
        while True:
            try:
                await self.store.heartbeat(self.owner, time.time())
                await self.recover()
                if self.retention.active and time.monotonic() - last_prune >= PRUNE_INTERVAL_S:
                    last_prune = time.monotonic()
                    await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is down: try again next round
                logger.exception("maintenance round failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.heartbeat_s):
                    await asyncio.Event().wait()

    async def prune(self) -> PruneReport:
        """Apply the retention settings (finished executions and lists only)."""
        report = await self.store.prune(
            older_than_s=self.retention.max_age_s,
            keep_last=self.retention.keep_last,
            max_event_bytes=self.retention.max_event_bytes,
        )
        if report.executions or report.task_lists:
            logger.info(
                "retention pruned {} execution(s), {} task list(s)",
                report.executions,
                report.task_lists,
            )
        return report

    async def _mark_lost(self, record: ExecutionRecord, killed: int) -> None:
        seq = max(record.last_seq, await self.store.last_event_seq(record.execution_id)) + 1
        now = time.time()
        frame = encode_notification(
            Notification.PROCESS_COMPLETED,
            {
                "execution_id": record.execution_id,
                "seq": seq,
                "status": LOST,
                "exit_code": None,
                "signal": None,
                "execution_time": record.execution_time,
                "reason": "daemon_restart",
                "leftover_processes_killed": killed,
            },
        )
        await self.store.append_events(
            [StoredEvent(record.execution_id, seq, Notification.PROCESS_COMPLETED, frame)]
        )
        await self.store.put_execution(
            dataclasses.replace(
                record, state=LOST, reason="daemon_restart", ended_at=now, last_seq=seq
            )
        )

    # --- starting ------------------------------------------------------------------------------

    async def execute(self, params: ExecuteParams) -> Execution:
        """Hooks, timeout prediction, then :meth:`Supervisor.execute`. Returns once spawned."""
        existing = (
            self.supervisor.find(params.execution_id) if params.execution_id is not None else None
        )
        if existing is not None:
            return await self.supervisor.execute(self._spec(params))  # idempotency check there
        if self.hooks is not None:
            proceed, message = await self.hooks.pre_execution(params)
            if not proceed:
                raise CommandNotAllowed(
                    f"refused by a pre_execution hook: {message or 'no reason given'}",
                    hook_message=message,
                )
        labels: dict[str, object] = {}
        if self.timeouts is not None:
            category = self.timeouts.classify(params)
            labels["category"] = category
            if params.timeout is None:
                predicted = await self.timeouts.predict(category, params)
                if predicted is not None:
                    labels["timeout_predicted"] = True
                    params = params.model_copy(update={"timeout": predicted})
        spec = self._spec(params)
        spec.labels.update(labels)
        execution = await self.supervisor.execute(spec)
        if self.hooks is not None:
            self.hooks.watch(execution)
        return execution

    def _spec(self, params: ExecuteParams) -> ExecutionSpec:
        return build_execute_spec(params, shell=self.supervisor.shell, claude=self.claude)

    # --- looking up ----------------------------------------------------------------------------

    def live(self, execution_id: str) -> Execution | None:
        return self.supervisor.find(execution_id)

    async def record(self, execution_id: str) -> ExecutionRecord:
        """The stored record (``ExecutionNotFound`` when neither live nor stored)."""
        record = await self.store.get_execution(execution_id)
        if record is None:
            raise ExecutionNotFound(
                f"execution {execution_id!r} not found", execution_id=execution_id
            )
        return record

    async def status(self, execution_id: str) -> dict[str, Any]:
        execution = self.live(execution_id)
        if execution is not None:
            return execution.info()
        return record_info(await self.record(execution_id))

    async def list(
        self, states: Iterable[str] | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        """Executions newest first, live ones as they are now, past ones from the store."""
        wanted = None if states is None else builtins.list(states)
        live = self.supervisor.list(states=wanted, limit=limit)
        stored = await self.store.list_executions(states=wanted, limit=limit)
        seen = {execution.id for execution in live}
        rows: builtins.list[dict[str, Any]] = [execution.info() for execution in live]
        rows.extend(record_info(r) for r in stored if r.execution_id not in seen)
        rows.sort(key=lambda row: float(row["created_at"]), reverse=True)
        return rows[:limit]

    async def wait(self, execution_id: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """Wait at most ``timeout`` seconds for the execution to finish; returns its status."""
        execution = self.live(execution_id)
        if execution is not None and not execution.finished:
            with contextlib.suppress(TimeoutError):
                await execution.wait(timeout=min(max(timeout, 0.0), WAIT_MAX_S))
        return await self.status(execution_id)

    # --- control ---------------------------------------------------------------------------------

    async def pause(self, execution_id: str) -> dict[str, Any]:
        await self._control(execution_id, "PAUSE")
        return await self.status(execution_id)

    async def resume(self, execution_id: str) -> dict[str, Any]:
        await self._control(execution_id, "RESUME")
        return await self.status(execution_id)

    async def cancel(self, execution_id: str) -> dict[str, Any]:
        await self._control(execution_id, "CANCEL")
        return await self.status(execution_id)

    async def control(self, execution_id: str, kind: str) -> None:
        """``PAUSE`` / ``RESUME`` / ``CANCEL`` a live execution (-32004 on a finished one)."""
        await self._control(execution_id, kind)

    async def _control(self, execution_id: str, kind: str) -> None:
        if self.live(execution_id) is None:
            record = await self.record(execution_id)  # -32003 when unknown
            raise InvalidTransition(
                f"cannot {kind} execution {execution_id!r}: it is {record.state}",
                execution_id=execution_id,
                state=record.state,
                requested=kind,
            )
        if kind == "PAUSE":
            await self.supervisor.pause(execution_id)
        elif kind == "RESUME":
            await self.supervisor.resume(execution_id)
        else:
            await self.supervisor.cancel(execution_id)

    async def write_input(self, execution_id: str, data: bytes, *, eof: bool = False) -> int:
        if self.live(execution_id) is None:
            await self._control(execution_id, "INPUT")
        return await self.supervisor.write_input(execution_id, data, eof=eof)

    # --- events ----------------------------------------------------------------------------------

    async def last_seq(self, execution_id: str) -> int:
        execution = self.live(execution_id)
        if execution is not None:
            return execution.log.last_seq
        record = await self.record(execution_id)
        return max(record.last_seq, await self.store.last_event_seq(execution_id))

    async def events(
        self, execution_id: str, *, after_seq: int = 0, limit: int = REPLAY_PAGE_EVENTS
    ) -> builtins.list[Event | Gap]:
        """At most ``limit`` events past ``after_seq`` that exist now (no waiting)."""
        execution = self.live(execution_id)
        if execution is not None:
            return await execution.log.read(after_seq, limit)
        await self.record(execution_id)
        stored = await self.store.read_events(execution_id, after_seq=after_seq, limit=limit)
        return [Event(e.seq, e.method, e.frame) for e in stored]

    async def follow(self, execution_id: str, after_seq: int = 0) -> AsyncIterator[Event | Gap]:
        """Every event past ``after_seq``, then live ones until the execution's log ends."""
        execution = self.live(execution_id)
        if execution is not None:
            async for item in execution.log.follow(after_seq):
                yield item
            return
        seq = after_seq
        while True:
            page = await self.store.read_events(
                execution_id, after_seq=seq, limit=REPLAY_PAGE_EVENTS
            )
            if not page:
                return
            for stored in page:
                yield Event(stored.seq, stored.method, stored.frame)
            seq = page[-1].seq

    async def ensure_known(self, execution_id: str) -> None:
        """``ExecutionNotFound`` unless the execution is live or stored."""
        if self.live(execution_id) is None:
            await self.record(execution_id)

    def hook_status(self) -> dict[str, Any]:
        if self.hooks is None:
            return {
                "configured": False,
                "enabled": False,
                "hooks": [],
                "last_runs": [],
                "message": "no hooks configured",
            }
        return self.hooks.status()
