"""Durable task lists from Python: ``cc_execute_task_list(..., durable=True)`` and ``resume``.

A durable list is a ``TaskLists`` object in the store (each task a fresh process, per-task
timeout, retries, ``on_failure`` and ``depends_on``; every step written before it happens), run
either by the embedded services of this process (:class:`EmbeddedRunner`) or by a daemon
(``task_list.create`` over ``/ws/mcp``). The caller waits for it here and gets one
:class:`TaskResult` per task, as a :class:`TaskListResults` carrying the ``list_id``.

Progress: the ``progress_callback`` sees ``task.started``, every event of each task's
execution, ``task.completed`` and at last ``task_list.completed`` (all as :class:`TaskEvent`).

Resuming (:func:`aresume`): embedded, the list is adopted (``TaskLists.adopt``: its owner must
be dead, and the interrupted task runs again as a new attempt; completed tasks never do); on a
daemon, which resumes its own lists after a restart, ``resume`` only waits for the list. Either
way a finished list's results come back at once.

Waiting on a daemon without the creating connection (``resume``, or after the connection
dropped) follows each running task's execution over ``attach`` and reads ``task_list.status``
between tasks with a bounded backoff: the wire has no way to subscribe to an existing list.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loguru import logger

from cc_executor.api.durable_tasks import (
    FINISHED_LIST_STATES,
    TaskListResults,
    list_params,
    results_from_view,
)
from cc_executor.api.events import TaskEvent, event_from_params
from cc_executor.api.execute import (
    ProgressCallback,
    _notify,
    build_runner,
    reports_dir_of,
    run_sync,
)
from cc_executor.api.runners import DaemonRunner, EmbeddedRunner, Runner, follow_events
from cc_executor.client import ConnectionLost, WebSocketClient
from cc_executor.config import Settings
from cc_executor.errors import ExecutionNotFound, InvalidParams, InvalidTransition
from cc_executor.protocol.names import Notification

__all__ = [
    "LIST_POLL_INITIAL_S",
    "LIST_POLL_MAX_S",
    "REPLAY_TIMEOUT_S",
    "aresume",
    "resume",
    "run_durable_list",
]

LIST_POLL_INITIAL_S = 0.05  # between two tasks of a daemon's list the next one starts at once
LIST_POLL_MAX_S = 2.0  # a paused or queued list is looked at this often
REPLAY_TIMEOUT_S = 120.0  # reading one finished execution's events back from a daemon
ACTIVE_TASK_STATES = frozenset({"running", "paused", "waiting_for_limit"})

Starter = Callable[[], Awaitable[dict[str, Any]]]


def _list_event(method: str, params: Mapping[str, Any]) -> TaskEvent:
    execution_id = params.get("execution_id")
    return TaskEvent(
        execution_id if isinstance(execution_id, str) else "", method, None, dict(params)
    )


# --- embedded -----------------------------------------------------------------------------------


async def _run_embedded(
    runner: EmbeddedRunner,
    list_id: str,
    start: Starter,
    *,
    callback: ProgressCallback | None,
    wait_timeout: float | None,
    reports_dir: Path,
) -> TaskListResults:
    lists, service = runner.services.task_lists, runner.services.service
    notes: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    # Subscribed before the list starts (create or adopt), so no notification can be missed.
    unsubscribe = lists.subscribe(
        list_id, lambda method, params, _: notes.put_nowait((method, params))
    )
    collected: dict[str, list[TaskEvent]] = {}
    try:
        view = await start()
        if view["state"] not in FINISHED_LIST_STATES:
            async with asyncio.timeout(wait_timeout):
                while True:
                    method, params = await notes.get()
                    await _notify(callback, _list_event(method, params))
                    if method == Notification.TASK_STARTED:
                        execution_id = str(params["execution_id"])
                        events = collected.setdefault(execution_id, [])
                        async for event in follow_events(service, execution_id):
                            events.append(event)
                            await _notify(callback, event)
                    elif method == Notification.TASK_LIST_COMPLETED:
                        break
    finally:
        unsubscribe()
    view = await lists.status(list_id)
    for execution_id in _last_executions(view):
        if execution_id not in collected:
            collected[execution_id] = [e async for e in follow_events(service, execution_id)]
    return results_from_view(view, collected, reports_dir=reports_dir)


def _last_executions(view: Mapping[str, Any]) -> list[str]:
    rows = view.get("tasks") or ()
    return [row["execution_id"] for row in rows if isinstance(row.get("execution_id"), str)]


async def _adopt(runner: EmbeddedRunner, list_id: str) -> dict[str, Any]:
    ttl = runner.services.service.owner_ttl_s
    try:
        return await runner.services.task_lists.adopt(list_id)
    except InvalidTransition as exc:
        owner = exc.data.get("owner")
        raise InvalidTransition(
            f"task list {list_id!r} cannot be resumed here: its owner {owner!r} is still "
            "alive (it sent a heartbeat in the last "
            f"{ttl:.0f} s). Wait for that program to finish it, or stop it; a program on "
            "this machine is dead as soon as its process has exited, one on another machine "
            f"{ttl:.0f} s after its last heartbeat.",
            **exc.data,
        ) from None


# --- daemon -------------------------------------------------------------------------------------


async def _handle_events(handle: AsyncIterator[Any]) -> AsyncIterator[TaskEvent]:
    async for event in handle:
        yield event_from_params(event.method, dict(event.params))


async def _follow_created(
    client: WebSocketClient,
    params: dict[str, Any],
    callback: ProgressCallback | None,
    collected: dict[str, list[TaskEvent]],
) -> None:
    """Follow a list this connection created, by its notifications, until it completes."""
    handle = await client.task_list_create(
        params["tasks"],
        name=params.get("name"),
        timeout_per_task=params.get("timeout_per_task"),
        on_failure=params.get("on_failure", "stop"),
        list_id=params.get("list_id"),
        metadata=params.get("metadata"),
    )
    async for note in handle:
        await _notify(callback, _list_event(note.method, note.params))
        if note.execution is not None:
            events = collected.setdefault(note.execution.execution_id, [])
            async for event in _handle_events(note.execution):
                events.append(event)
                await _notify(callback, event)


async def _poll_daemon(
    client: WebSocketClient,
    list_id: str,
    callback: ProgressCallback | None,
    collected: dict[str, list[TaskEvent]],
) -> dict[str, Any]:
    """Wait for a daemon's list without its notifications: follow each running task's
    execution (``attach``), and read ``task_list.status`` between tasks (bounded backoff)."""
    finished: set[str] = set()
    delay = LIST_POLL_INITIAL_S
    while True:
        view = await client.task_list_status(list_id)
        if view["state"] in FINISHED_LIST_STATES:
            return view
        current = next(
            (
                row["execution_id"]
                for row in view.get("tasks") or ()
                if row.get("state") in ACTIVE_TASK_STATES
                and isinstance(row.get("execution_id"), str)
                and row["execution_id"] not in finished
            ),
            None,
        )
        if current is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, LIST_POLL_MAX_S)
            continue
        delay = LIST_POLL_INITIAL_S
        events = collected.setdefault(current, [])
        after = max((e.seq for e in events if e.seq is not None), default=0)
        handle = await client.attach(current, after, capture=False)
        async for event in _handle_events(handle):
            events.append(event)
            await _notify(callback, event)
        finished.add(current)


async def _replay_daemon(client: WebSocketClient, execution_id: str) -> list[TaskEvent]:
    try:
        async with asyncio.timeout(REPLAY_TIMEOUT_S):
            handle = await client.attach(execution_id, 0, capture=False)
            return [event async for event in _handle_events(handle)]
    except ExecutionNotFound:  # pruned by retention: the result keeps what status says
        return []


async def _run_daemon(
    client: WebSocketClient,
    list_id: str,
    params: dict[str, Any] | None,
    *,
    callback: ProgressCallback | None,
    wait_timeout: float | None,
    reports_dir: Path,
) -> TaskListResults:
    collected: dict[str, list[TaskEvent]] = {}
    async with asyncio.timeout(wait_timeout):
        if params is not None:
            try:
                await _follow_created(client, params, callback, collected)
            except ConnectionLost as exc:
                logger.warning("task list {}: {}; following it by status", list_id, exc)
                await _poll_daemon(client, list_id, callback, collected)
        else:
            await _poll_daemon(client, list_id, callback, collected)
        view = await client.task_list_status(list_id)
    complete = {eid for eid, events in collected.items() if _ends(events)}
    for execution_id in _last_executions(view):
        if execution_id not in complete:
            collected[execution_id] = await _replay_daemon(client, execution_id)
    return results_from_view(view, collected, reports_dir=reports_dir)


def _ends(events: Sequence[TaskEvent]) -> bool:
    return bool(events) and events[-1].method == Notification.PROCESS_COMPLETED


# --- entry points -------------------------------------------------------------------------------


def _where(
    settings: Settings, server_url: str | None, token: str | None, runner: Runner | None
) -> EmbeddedRunner | DaemonRunner:
    """The runner given (an embedded or daemon one), else the one ``server_url`` asks for."""
    if isinstance(runner, EmbeddedRunner | DaemonRunner):
        return runner
    if runner is not None:
        raise InvalidParams(
            "durable task lists run on an EmbeddedRunner or a daemon (server_url), "
            f"not on {type(runner).__name__}"
        )
    chosen = build_runner(settings, server_url, token)
    assert isinstance(chosen, EmbeddedRunner | DaemonRunner)
    return chosen


async def run_durable_list(
    tasks: Sequence[str | Mapping[str, Any]],
    *,
    settings: Settings,
    on_failure: str,
    timeout_per_task: float | None,
    progress_callback: ProgressCallback | None,
    server_url: str | None,
    runner: Runner | None,
    token: str | None,
    reports_dir: str | Path | None,
    list_id: str | None,
    name: str | None,
    wait_timeout: float | None,
    common: Mapping[str, Any],
) -> TaskListResults:
    """Create the list (embedded or on a daemon), wait for it, return its results."""
    params = list_params(
        tasks,
        settings=settings,
        on_failure=on_failure,
        timeout_per_task=timeout_per_task,
        list_id=list_id,
        name=name,
        common=common,
    )
    folder = Path(reports_dir) if reports_dir is not None else reports_dir_of(settings)
    lid = params.list_id or _new_list_id()
    params = params.model_copy(update={"list_id": lid})
    where = _where(settings, server_url, token, runner)
    async with where:
        if isinstance(where, EmbeddedRunner):
            lists = where.services.task_lists
            return await _run_embedded(
                where,
                lid,
                lambda: lists.create(params),
                callback=progress_callback,
                wait_timeout=wait_timeout,
                reports_dir=folder,
            )
        wire = params.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        wire.update(list_id=lid, on_failure=params.on_failure)
        return await _run_daemon(
            where.client,
            lid,
            wire,
            callback=progress_callback,
            wait_timeout=wait_timeout,
            reports_dir=folder,
        )


def _new_list_id() -> str:
    return uuid.uuid4().hex


async def aresume(
    list_id: str,
    *,
    progress_callback: ProgressCallback | None = None,
    server_url: str | None = None,
    token: str | None = None,
    settings: Settings | None = None,
    runner: Runner | None = None,
    reports_dir: str | Path | None = None,
    wait_timeout: float | None = None,
) -> TaskListResults:
    """Finish the durable list ``list_id`` and return one :class:`TaskResult` per task.

    Embedded (no ``server_url``): the list is adopted by this process's services from the store
    ``settings`` name. Its owner must be dead (a program that crashed, or stopped, while running
    it), else :class:`~cc_executor.errors.InvalidTransition`; the task that was running when
    it died runs again as a new attempt, completed tasks are not run again. With
    ``server_url``: the daemon resumes its own lists after a restart; this waits for the list.
    A finished list returns its results at once. ``wait_timeout`` bounds the wait (``None``:
    until the list ends; each task is bounded by its own timeout); ``TimeoutError`` then, and
    the list goes on (embedded: it stops with this process and can be resumed again).
    """
    configured = settings if settings is not None else Settings()
    folder = Path(reports_dir) if reports_dir is not None else reports_dir_of(configured)
    where = _where(configured, server_url, token, runner)
    async with where:
        if isinstance(where, EmbeddedRunner):
            chosen = where
            return await _run_embedded(
                chosen,
                list_id,
                lambda: _adopt(chosen, list_id),
                callback=progress_callback,
                wait_timeout=wait_timeout,
                reports_dir=folder,
            )
        return await _run_daemon(
            where.client,
            list_id,
            None,
            callback=progress_callback,
            wait_timeout=wait_timeout,
            reports_dir=folder,
        )


def resume(
    list_id: str,
    *,
    progress_callback: ProgressCallback | None = None,
    server_url: str | None = None,
    **kwargs: Any,
) -> TaskListResults:
    """Blocking :func:`aresume` (same keywords) for code without a running event loop."""
    return run_sync(
        aresume(list_id, progress_callback=progress_callback, server_url=server_url, **kwargs),
        "resume",
        "aresume",
    )
