"""Durable task lists: tasks run one by one, each in a fresh process, surviving daemon restarts.

Owns: the life of a task list (queued → running → completed | failed | canceled, ``paused``
while its queue is held), the order of its tasks (index order, ``depends_on`` checked), per-task
timeout, retries and ``on_failure``, and the ``task.*`` notifications to subscribers. Every
change is written to the store *before* it takes effect (a task is ``running`` with its new
execution id in the store before that execution is spawned), so after a crash the store tells
exactly where each list was. Does not own: running one task (``ExecutionService.execute``),
storage I/O, or connections (a door subscribes with a callback).

Restart rules (:meth:`TaskLists.recover`, run at daemon start after the service marked the
dead daemon's executions ``lost``): a list that was queued, running or paused continues at its
first unfinished task; a task that was running is run again as a new attempt (its attempt count
and every execution id stay recorded); completed tasks are never run again. An attempt that
ended ``lost`` does not count against the task's ``retries``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from loguru import logger
from pydantic import ValidationError

from cc_executor.errors import CCExecutorError, ExecutionNotFound, InvalidParams, InvalidTransition
from cc_executor.protocol import ExecuteParams, TaskListCreateParams
from cc_executor.protocol.jsonrpc import encode_notification
from cc_executor.protocol.names import Notification
from cc_executor.scheduler.hooks.model import HookEvent
from cc_executor.scheduler.service import ExecutionService
from cc_executor.storage.base import LOST, Store, TaskListRecord, TaskRecord
from cc_executor.supervisor import Execution, ExecutionState

__all__ = ["FINISHED_LIST_STATES", "Subscriber", "TaskLists", "task_list_view"]

FINISHED_LIST_STATES = frozenset({"completed", "failed", "canceled"})
UNFINISHED_LIST_STATES = ("queued", "running", "paused")
FINISHED_TASK_STATES = frozenset({"completed", "failed", "canceled", "skipped"})
INTERRUPTED_TASK_STATES = frozenset({"running", "paused", "waiting_for_limit"})
RECOVERY_LIMIT = 10_000  # unfinished lists resumed at start

Subscriber = Callable[[str, dict[str, Any], str], None]
"""Called with (notification method, params, encoded frame); must not block or raise."""

_TERMINAL_TASK = {
    ExecutionState.COMPLETED: "completed",
    ExecutionState.FAILED: "failed",
    ExecutionState.TIMEOUT: "failed",
    ExecutionState.CANCELED: "canceled",
}


def task_list_view(record: TaskListRecord, tasks: Sequence[TaskRecord]) -> dict[str, Any]:
    """The ``task_list.status`` result."""
    rows: list[dict[str, Any]] = [
        {
            "index": t.index,
            "state": t.state,
            "spec": t.spec,
            "timeout": t.timeout,
            "retries": t.retries,
            "on_failure": t.on_failure,
            "depends_on": t.depends_on,
            "attempts": t.attempts,
            "execution_ids": t.execution_ids,
            "execution_id": t.execution_ids[-1] if t.execution_ids else None,
            "started_at": t.started_at,
            "ended_at": t.ended_at,
            "exit_code": t.exit_code,
            "error": t.error,
            "result": t.result,
        }
        for t in tasks
    ]
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.state] = counts.get(task.state, 0) + 1
    return {
        "list_id": record.list_id,
        "name": record.name,
        "state": record.state,
        "queue_paused": record.queue_paused,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "total_tasks": record.total_tasks,
        "counts": counts,
        "metadata": record.metadata,
        "owner": record.owner,
        "tasks": rows,
    }


@dataclass(eq=False)
class _Run:
    """What a running list holds in memory besides its store rows."""

    record: TaskListRecord
    tasks: list[TaskRecord]
    held: asyncio.Event = field(default_factory=asyncio.Event)  # set = queue may proceed
    canceled: bool = False
    current: str | None = None  # execution id of the running task
    task: asyncio.Task[None] | None = None


class TaskLists:
    """Use as ``async with TaskLists(service) as lists`` (after the service is entered)."""

    def __init__(self, service: ExecutionService, *, auto_resume: bool = True) -> None:
        self.service = service
        self.store: Store = service.store
        # A daemon resumes the lists its previous incarnation or a dead daemon left; an embedded
        # user (the Python API) resumes a list only when asked (:meth:`adopt`).
        self.auto_resume = auto_resume
        self._maintenance: asyncio.Task[None] | None = None
        self._runs: dict[str, _Run] = {}
        self._subscribers: dict[str, builtins.list[Subscriber]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._closing = False
        self._lock = asyncio.Lock()  # create/recover vs. each other

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        if self.auto_resume:
            await self.recover()
            self._maintenance = self._group.create_task(self._maintain(), name="task-lists")
        return self

    async def _maintain(self) -> None:
        """Take over, now and then, the lists of daemons that died meanwhile (shared Redis)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.service.owner_ttl_s):
                    await asyncio.Event().wait()
            try:
                await self.recover()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is down: try again next round
                logger.exception("task list recovery round failed")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Shutdown leaves every list as the store has it: the next start continues them.
        self._closing = True
        if self._maintenance is not None:
            self._maintenance.cancel()
        for run in self._runs.values():
            if run.task is not None:
                run.task.cancel()
        if self._group is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._group.__aexit__(None, None, None)
        self._group = None

    async def recover(self) -> builtins.list[str]:
        """Resume every unfinished list whose owner is dead (ours before a restart included).

        Lists of embedded owners (the Python API) are left for :meth:`adopt`.
        """
        resumed: builtins.list[str] = []
        async with self._lock:
            heartbeats = await self.store.owner_heartbeats()
            records = await self.store.list_task_lists(
                states=UNFINISHED_LIST_STATES, limit=RECOVERY_LIMIT
            )
            for record in records:
                if record.list_id in self._runs:
                    continue
                if record.owner is not None and record.owner.startswith("embedded:"):
                    continue
                if not await self.service.dead_owner(record.owner, heartbeats):
                    continue
                if await self._take_over(record) is not None:
                    resumed.append(record.list_id)
        if resumed:
            logger.info("resuming {} task list(s) of a dead owner", len(resumed))
        return resumed

    async def adopt(self, list_id: str) -> dict[str, Any]:
        """Continue ``list_id`` here: it must be unfinished and its owner dead (or this one)."""
        async with self._lock:
            if list_id in self._runs:
                run = self._runs[list_id]
                return task_list_view(run.record, run.tasks)
            record = await self._stored(list_id)
            if record.state in FINISHED_LIST_STATES:
                return await self.status(list_id)
            heartbeats = await self.store.owner_heartbeats()
            if not await self.service.dead_owner(record.owner, heartbeats):
                raise InvalidTransition(
                    f"task list {list_id!r} is running under another live owner",
                    list_id=list_id,
                    state=record.state,
                    owner=record.owner,
                )
            taken = await self._take_over(record)
            if taken is None:
                raise InvalidTransition(
                    f"task list {list_id!r} was just taken over by another owner",
                    list_id=list_id,
                    state=record.state,
                )
        return task_list_view(taken.record, taken.tasks)

    async def _take_over(self, record: TaskListRecord) -> _Run | None:
        """Claim the list (compare-and-set: of several services only one wins), settle its
        interrupted attempt (kill what is left, mark it ``lost``), then run it here."""
        claimed = await self.store.claim_task_list(
            record.list_id, expected_owner=record.owner, owner=self.service.owner, at=time.time()
        )
        if not claimed:
            return None
        record = await self._stored(record.list_id)
        tasks = await self.store.get_tasks(record.list_id)
        for task in tasks:
            if task.state in INTERRUPTED_TASK_STATES and task.execution_ids:
                # Its execution may have died before the recorder stored it: settle it by id.
                await self.service.recover_execution(task.execution_ids[-1])
        run = _Run(record, tasks)
        self._start(run)
        return run

    # --- API -----------------------------------------------------------------------------------

    async def create(
        self,
        params: TaskListCreateParams | dict[str, Any],
        *,
        subscriber: Subscriber | None = None,
    ) -> dict[str, Any]:
        """Store the list and its tasks (all ``queued``), then start running it."""
        if not isinstance(params, TaskListCreateParams):
            try:
                params = TaskListCreateParams.model_validate(params)
            except ValidationError as exc:
                raise InvalidParams(
                    f"invalid task list: {exc.error_count()} error(s)",
                    errors=exc.errors(
                        include_url=False, include_context=False, include_input=False
                    ),
                ) from None
        list_id = params.list_id or uuid.uuid4().hex
        async with self._lock:
            if list_id in self._runs or await self.store.get_task_list(list_id) is not None:
                raise InvalidParams(f"task list {list_id!r} already exists", list_id=list_id)
            now = time.time()
            record = TaskListRecord(
                list_id=list_id,
                name=params.name,
                state="queued",
                created_at=now,
                updated_at=now,
                total_tasks=len(params.tasks),
                metadata=dict(params.metadata or {}),
                owner=self.service.owner,
            )
            tasks = []
            for index, spec in enumerate(params.tasks):
                execute = spec.model_dump(
                    exclude_none=True,
                    exclude={"retries", "on_failure", "depends_on", "timeout"},
                    exclude_defaults=True,
                )
                tasks.append(
                    TaskRecord(
                        list_id=list_id,
                        index=index,
                        spec=execute,
                        timeout=spec.timeout or params.timeout_per_task,
                        retries=spec.retries,
                        on_failure=spec.on_failure or params.on_failure,
                        depends_on=list(spec.depends_on),
                    )
                )
            for task in tasks:
                await self.store.put_task(task)
            await self.store.put_task_list(record)  # last: a list row implies all its tasks
            if subscriber is not None:
                self.subscribe(list_id, subscriber)
            self._start(_Run(record, tasks))
        return task_list_view(record, tasks)

    async def status(self, list_id: str) -> dict[str, Any]:
        run = self._runs.get(list_id)
        if run is not None:
            return task_list_view(run.record, run.tasks)
        record = await self._stored(list_id)
        return task_list_view(record, await self.store.get_tasks(list_id))

    async def list(
        self, states: Iterable[str] | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        wanted = None if states is None else builtins.list(states)
        records = await self.store.list_task_lists(states=wanted, limit=limit)
        views = []
        for record in records:
            run = self._runs.get(record.list_id)
            if run is not None:
                views.append(task_list_view(run.record, run.tasks))
            else:
                views.append(task_list_view(record, await self.store.get_tasks(record.list_id)))
        return views

    async def pause(self, list_id: str, *, pause_running: bool = False) -> dict[str, Any]:
        """Hold the queue (the running task finishes); optionally SIGSTOP the running task too."""
        run = await self._live_run(list_id, "pause")
        if run.record.queue_paused and not pause_running:
            raise InvalidTransition(
                f"task list {list_id!r} is already paused", list_id=list_id, state="paused"
            )
        run.held.clear()
        await self._put_list(run, queue_paused=True, state="paused")
        if pause_running and run.current is not None:
            execution = self.service.live(run.current)
            if execution is not None and execution.state is ExecutionState.RUNNING:
                await self.service.pause(run.current)
                await self._set_current_task(run, state="paused")
        return task_list_view(run.record, run.tasks)

    async def resume(self, list_id: str) -> dict[str, Any]:
        run = await self._live_run(list_id, "resume")
        current = self.service.live(run.current) if run.current is not None else None
        running_paused = current is not None and current.state is ExecutionState.PAUSED
        if not run.record.queue_paused and not running_paused:
            raise InvalidTransition(
                f"task list {list_id!r} is not paused", list_id=list_id, state=run.record.state
            )
        if running_paused and run.current is not None:
            await self.service.resume(run.current)
            await self._set_current_task(run, state="running")
        await self._put_list(
            run, queue_paused=False, state="running" if run.record.started_at else "queued"
        )
        run.held.set()
        return task_list_view(run.record, run.tasks)

    async def cancel(self, list_id: str) -> dict[str, Any]:
        """Cancel the running task and every task not yet run; the list ends ``canceled``."""
        run = await self._live_run(list_id, "cancel")
        run.canceled = True
        run.held.set()
        if run.current is not None and self.service.live(run.current) is not None:
            with contextlib.suppress(InvalidTransition):  # it may be ending on its own
                await self.service.cancel(run.current)
        if run.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(run.task)
        return task_list_view(run.record, run.tasks)

    def subscribe(self, list_id: str, subscriber: Subscriber) -> Callable[[], None]:
        """Deliver this list's ``task.*`` notifications; returns the unsubscribe function."""
        self._subscribers.setdefault(list_id, []).append(subscriber)

        def unsubscribe() -> None:
            subs = self._subscribers.get(list_id)
            if subs is not None and subscriber in subs:
                subs.remove(subscriber)
                if not subs:
                    del self._subscribers[list_id]

        return unsubscribe

    async def wait(self, list_id: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """Wait at most ``timeout`` seconds for the list to finish; returns its status."""
        run = self._runs.get(list_id)
        if run is not None and run.task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(run.task)
        return await self.status(list_id)

    # --- running -------------------------------------------------------------------------------

    def _start(self, run: _Run) -> None:
        assert self._group is not None, "TaskLists used outside its async with"
        if not run.record.queue_paused:
            run.held.set()
        self._runs[run.record.list_id] = run
        run.task = self._group.create_task(self._run(run), name=f"task-list:{run.record.list_id}")

    async def _run(self, run: _Run) -> None:
        list_id = run.record.list_id
        try:
            await self._run_tasks(run)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # task top level: record the failure, keep the daemon
            logger.exception("task list {} failed", list_id)
            with contextlib.suppress(Exception):
                await self._put_list(run, state="failed", ended_at=time.time())
                self._notify(
                    list_id,
                    Notification.TASK_LIST_COMPLETED,
                    {"state": "failed", "error": str(exc)},
                )
        finally:
            if not self._closing:
                self._runs.pop(list_id, None)
                self._subscribers.pop(list_id, None)

    async def _run_tasks(self, run: _Run) -> None:
        if run.record.started_at is None:
            await self._put_list(run, state="running", started_at=time.time())
        failed = False
        for index, task in enumerate(run.tasks):
            if task.state in FINISHED_TASK_STATES:
                failed = failed or (task.state == "failed" and task.on_failure == "stop")
                if failed:
                    break
                continue
            await self._wait_held(run)
            if run.canceled:
                break
            missing = [d for d in task.depends_on if run.tasks[d].state != "completed"]
            if missing:
                await self._finish_task(
                    run, index, "skipped", error=f"dependencies not completed: {missing}"
                )
                continue
            if self.service.hooks is not None:
                proceed, message = await self.service.hooks.task_event(
                    HookEvent.PRE_TASK, list_id=run.record.list_id, index=index, spec=task.spec
                )
                if not proceed:
                    await self._finish_task(
                        run, index, "failed", error=f"refused by a pre_task hook: {message}"
                    )
                    if task.on_failure == "stop":
                        failed = True
                        break
                    continue
            outcome = await self._run_task(run, index)
            if self.service.hooks is not None:
                done = run.tasks[index]
                await self.service.hooks.task_event(
                    HookEvent.POST_TASK,
                    list_id=run.record.list_id,
                    index=index,
                    spec=done.spec,
                    state=done.state,
                    exit_code=done.exit_code,
                    execution_id=done.execution_ids[-1] if done.execution_ids else None,
                )
            if run.canceled:
                break
            if outcome != "completed" and run.tasks[index].on_failure == "stop":
                failed = True
                break
        await self._close_list(run, failed)

    async def _close_list(self, run: _Run, failed: bool) -> None:
        for index, task in enumerate(run.tasks):
            if task.state not in FINISHED_TASK_STATES:
                await self._finish_task(
                    run,
                    index,
                    "canceled",
                    error="task list canceled" if run.canceled else "an earlier task failed",
                )
        if run.canceled:
            state = "canceled"
        elif failed or any(t.state == "failed" for t in run.tasks):
            state = "failed"
        else:
            state = "completed"
        await self._put_list(run, state=state, queue_paused=False, ended_at=time.time())
        self._notify(
            run.record.list_id,
            Notification.TASK_LIST_COMPLETED,
            {"state": state, "counts": task_list_view(run.record, run.tasks)["counts"]},
        )

    async def _wait_held(self, run: _Run) -> None:
        if not run.held.is_set():
            await run.held.wait()

    async def _run_task(self, run: _Run, index: int) -> str:
        """Run one task, with its retries; returns its final state."""
        while True:
            task = run.tasks[index]
            attempt = task.attempts + 1
            execution_id = f"{run.record.list_id}.{index}.{attempt}"
            await self._put_task(
                run,
                index,
                state="running",
                attempts=attempt,
                execution_ids=[*task.execution_ids, execution_id],
                started_at=task.started_at or time.time(),
                error=None,
            )
            params = self._params(run, run.tasks[index], execution_id, attempt)
            try:
                execution = await self.service.execute(params)
            except CCExecutorError as exc:
                await self._finish_task(run, index, "failed", error=exc.message)
                return "failed"
            run.current = execution_id
            self._notify(
                run.record.list_id,
                Notification.TASK_STARTED,
                {"index": index, "execution_id": execution_id, "attempt": attempt},
            )
            try:
                await self._watch(run, index, execution)
            finally:
                run.current = None
            state = _TERMINAL_TASK.get(execution.state, "failed")
            if state == "completed" or run.canceled or state == "canceled":
                await self._finish_task(run, index, state, execution=execution)
                return state
            if await self._failures(run.tasks[index]) <= run.tasks[index].retries:
                logger.info(
                    "task list {} task {}: attempt {} {}; retrying",
                    run.record.list_id,
                    index,
                    attempt,
                    execution.state.value,
                )
                continue
            await self._finish_task(run, index, "failed", execution=execution)
            return "failed"

    async def _watch(self, run: _Run, index: int, execution: Execution) -> None:
        """Wait for the execution to end, reflecting ``waiting_for_limit`` in the task.

        The execution itself sends ``task.waiting_for_limit`` (with the reset time) in its own
        event stream, which the list's subscribers follow.
        """
        waiting = False
        async for _ in execution.log.follow(execution.log.last_seq):
            now_waiting = execution.state is ExecutionState.WAITING_FOR_LIMIT
            if now_waiting != waiting:
                waiting = now_waiting
                await self._set_current_task(
                    run, state="waiting_for_limit" if waiting else "running"
                )
        await execution.wait()
        if execution.reason == "supervisor_shutdown" and self._closing:
            raise asyncio.CancelledError  # the daemon is stopping: the next start re-runs it

    async def _failures(self, task: TaskRecord) -> int:
        """Attempts that ended other than ``lost`` (a dead daemon's attempt is not the task's)."""
        failures = 0
        for execution_id in task.execution_ids:
            record = await self.store.get_execution(execution_id)
            if record is None or record.state != LOST:
                failures += 1
        return failures

    def _params(
        self, run: _Run, task: TaskRecord, execution_id: str, attempt: int
    ) -> ExecuteParams:
        spec = dict(task.spec)
        metadata = dict(spec.pop("metadata", None) or {})
        metadata.update(
            task_list_id=run.record.list_id, task_index=task.index, task_attempt=attempt
        )
        if task.timeout is not None:
            spec["timeout"] = task.timeout
        return ExecuteParams.model_validate(
            {**spec, "execution_id": execution_id, "metadata": metadata}
        )

    # --- store writes --------------------------------------------------------------------------

    async def _finish_task(
        self,
        run: _Run,
        index: int,
        state: str,
        *,
        error: str | None = None,
        execution: Execution | None = None,
    ) -> None:
        fields: dict[str, Any] = {"state": state, "ended_at": time.time(), "error": error}
        if execution is not None:
            info = execution.info()
            fields["exit_code"] = execution.exit_code
            result = info.get("result")
            fields["result"] = dict(result) if isinstance(result, dict) else None
            if state != "completed" and error is None:
                fields["error"] = execution.reason or execution.state.value
        await self._put_task(run, index, **fields)
        self._notify(
            run.record.list_id,
            Notification.TASK_COMPLETED,
            {
                "index": index,
                "status": state,
                "execution_id": run.tasks[index].execution_ids[-1]
                if run.tasks[index].execution_ids
                else None,
                "exit_code": fields.get("exit_code"),
                "error": fields["error"],
            },
        )

    async def _set_current_task(self, run: _Run, *, state: str) -> None:
        for index, task in enumerate(run.tasks):
            if run.current is not None and run.current in task.execution_ids[-1:]:
                await self._put_task(run, index, state=state)

    async def _put_task(self, run: _Run, index: int, **changes: Any) -> None:
        task = dataclasses.replace(run.tasks[index], **changes)
        await self.store.put_task(task)
        run.tasks[index] = task

    async def _put_list(self, run: _Run, **changes: Any) -> None:
        record = dataclasses.replace(run.record, updated_at=time.time(), **changes)
        await self.store.put_task_list(record)
        run.record = record

    def _notify(self, list_id: str, method: str, params: dict[str, Any]) -> None:
        subscribers = self._subscribers.get(list_id)
        if not subscribers:
            return
        body = {"list_id": list_id, **params}
        frame = encode_notification(method, body)
        for subscriber in builtins.list(subscribers):
            try:
                subscriber(method, body, frame)
            except Exception:  # a subscriber's bug must not stop the list
                logger.exception("task list {}: subscriber failed", list_id)

    # --- lookups -------------------------------------------------------------------------------

    async def _stored(self, list_id: str) -> TaskListRecord:
        record = await self.store.get_task_list(list_id)
        if record is None:
            raise ExecutionNotFound(f"task list {list_id!r} not found", list_id=list_id)
        return record

    async def _live_run(self, list_id: str, asked: str) -> _Run:
        run = self._runs.get(list_id)
        if run is None:
            record = await self._stored(list_id)
            raise InvalidTransition(
                f"cannot {asked} task list {list_id!r}: it is {record.state}",
                list_id=list_id,
                state=record.state,
                requested=asked.upper(),
            )
        return run
