"""``TaskListHandle``: a durable task list this client created, as a stream of its notifications.

Owns the list's side of ``task_list.create``: the daemon sends the creating connection
``task.started``, ``task.completed``, ``task.waiting_for_limit`` and ``task_list.completed``
(each with ``list_id``), and follows every started task's execution on the same connection. The
client routes those notifications here; with ``follow_tasks`` each ``task.started`` event carries
an :class:`~cc_executor.client.handle.ExecutionHandle` of that task's execution, registered before
its first event can arrive (the daemon sends the notification first, then the task's events).

List notifications are not replayed: when the connection drops, the handle fails with
:class:`~cc_executor.client.errors.ConnectionLost` and the caller polls ``task_list.status``
(the list itself keeps running on the daemon).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cc_executor.client.errors import ConnectionLost
from cc_executor.protocol.names import Method, Notification

if TYPE_CHECKING:
    from cc_executor.client.handle import ExecutionHandle, HandleOwner

__all__ = ["LIST_NOTIFICATIONS", "TaskListEvent", "TaskListHandle"]

LIST_NOTIFICATIONS = frozenset(
    {
        Notification.TASK_STARTED.value,
        Notification.TASK_COMPLETED.value,
        Notification.TASK_WAITING_FOR_LIMIT.value,
        Notification.TASK_LIST_COMPLETED.value,
    }
)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class TaskListEvent:
    """One ``task.*`` / ``task_list.completed`` notification of a list, as it came."""

    method: str
    list_id: str
    params: dict[str, Any] = field(default_factory=dict, repr=False)
    execution: ExecutionHandle | None = field(default=None, repr=False, compare=False)
    """``task.started`` with ``follow_tasks``: the handle of the task's execution (iterate it)."""

    @property
    def index(self) -> int | None:
        return _int(self.params.get("index"))

    @property
    def execution_id(self) -> str | None:
        return _str(self.params.get("execution_id"))

    @property
    def status(self) -> str | None:
        """``task.completed``: the task's state; ``task_list.completed``: the list's."""
        return _str(self.params.get("status")) or _str(self.params.get("state"))

    @property
    def final(self) -> bool:
        return self.method == Notification.TASK_LIST_COMPLETED


class TaskListHandle:
    """A list created through this client: ``async for event in handle`` until
    ``task_list.completed``; control it with :meth:`pause`, :meth:`resume`, :meth:`cancel`.

    ``created`` is the ``task_list.create`` result (the list's status view at creation). The
    notifications are few (about three per task attempt), so they are buffered without a bound.
    """

    def __init__(self, owner: HandleOwner, list_id: str, *, follow_tasks: bool) -> None:
        self._owner = owner
        self.list_id = list_id
        self.follow_tasks = follow_tasks
        self.created: dict[str, Any] = {}
        self.final: TaskListEvent | None = None
        self._buffer: deque[TaskListEvent] = deque()
        self._wakeup = asyncio.Event()
        self._final_fed = False
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"<TaskListHandle {self.list_id} done={self.final is not None}>"

    @property
    def done(self) -> bool:
        return self.final is not None

    # --- feeding (called by the client's reader; never awaits) ---------------------------------
    def _feed(self, event: TaskListEvent) -> None:
        if self._final_fed:
            return
        self._buffer.append(event)
        self._final_fed = event.final
        self._wakeup.set()

    def _fail(self, exc: BaseException) -> None:
        if not self._final_fed and self._failure is None:
            self._failure = exc
            self._wakeup.set()

    # --- consuming ------------------------------------------------------------------------------
    def __aiter__(self) -> TaskListHandle:
        return self

    async def __anext__(self) -> TaskListEvent:
        while True:
            if self._buffer:
                event = self._buffer.popleft()
                if event.final:
                    self.final = event
                return event
            if self.final is not None:
                raise StopAsyncIteration
            if self._failure is not None:
                raise self._failure
            self._wakeup.clear()
            await self._wakeup.wait()

    async def wait(self) -> TaskListEvent:
        """Consume the remaining notifications; returns ``task_list.completed``."""
        async for _ in self:
            pass
        if self.final is None:  # pragma: no cover - the iteration ends only on it or raises
            raise ConnectionLost("task list stream ended early", list_id=self.list_id)
        return self.final

    # --- control --------------------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        """``task_list.status``: the list and every task (state, attempts, execution ids)."""
        return await self._owner._call(Method.TASK_LIST_STATUS, {"list_id": self.list_id})

    async def pause(self, *, pause_running: bool = False) -> dict[str, Any]:
        """Hold the queue (with ``pause_running`` also SIGSTOP the running task)."""
        return await self._owner._call(
            Method.TASK_LIST_PAUSE, {"list_id": self.list_id, "pause_running": pause_running}
        )

    async def resume(self) -> dict[str, Any]:
        """Release a paused list."""
        return await self._owner._call(Method.TASK_LIST_RESUME, {"list_id": self.list_id})

    async def cancel(self) -> dict[str, Any]:
        """Cancel the running task and every task not yet run; the list ends ``canceled``."""
        return await self._owner._call(Method.TASK_LIST_CANCEL, {"list_id": self.list_id})
