"""The ``/ws/mcp`` door: JSON-RPC 2.0 over WebSocket, one :class:`Connection` per socket.

Owns the handshake (checks before accept), the per-connection read loop, subscriptions (one
follower task per execution the connection watches, owned by the connection's TaskGroup) and
the method handlers. It does not own executions: they belong to the :class:`Supervisor` and
outlive the connection; a connection only *subscribes* to their event logs.

Ordering: a handler's response frame is sent before any notification of the execution it
started or attached (followers start only after the response is out), and every frame goes
through one send lock, so frames never interleave.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from loguru import logger
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cc_executor import __version__
from cc_executor.errors import InvalidParams, LimitReached
from cc_executor.protocol import (
    OUTPUT_CHUNK_MAX_BYTES,
    PROTOCOL_VERSION,
    AttachParams,
    ControlParams,
    DetachParams,
    Dispatcher,
    EmptyParams,
    ExecuteParams,
    InputParams,
    ListParams,
    PongParams,
    StatusParams,
    TaskListCreateParams,
    TaskListParams,
    TaskListPauseParams,
    encode_notification,
)
from cc_executor.protocol.names import ControlType, Method, Notification
from cc_executor.scheduler import KNOWN_AGENTS
from cc_executor.scheduler.service import ExecutionService
from cc_executor.scheduler.task_lists import TaskLists
from cc_executor.server.security import authorize_websocket
from cc_executor.supervisor import Execution, Gap

__all__ = ["Connection", "WebSocketDoor", "WebSocketFastPath", "build_dispatcher"]

CAPABILITIES: dict[str, Any] = {
    "methods": [m.value for m in Method],
    "argv": True,
    "agents": list(KNOWN_AGENTS),
    "attach": True,
    "input": True,
    "task_lists": True,
    "durable_history": True,
    "output_chunk_max_bytes": OUTPUT_CHUNK_MAX_BYTES,
    "encodings": ["utf-8", "base64"],
}

INLINE_EVENTS_MAX = 16
"""Events :meth:`Connection.send_ready_then_follow` sends from the read loop before the follower."""


@dataclass(eq=False)
class Connection:
    """One WebSocket client: what it started, what it watches, and how to send to it."""

    websocket: WebSocket
    service: ExecutionService
    task_lists: TaskLists
    max_executions: int
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: set[str] = field(default_factory=set)
    followers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    list_subscriptions: list[Callable[[], None]] = field(default_factory=list)
    after_response: list[Callable[[], Awaitable[None] | None]] = field(default_factory=list)
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tasks: asyncio.TaskGroup | None = None

    async def send(self, frame: str) -> None:
        async with self._send_lock:
            await self.websocket.send_text(frame)

    def live_started(self) -> list[Execution]:
        """What this connection started that is still running; forgets the finished ones.

        A finished execution never runs again, so dropping it from ``started`` here keeps every
        call (one per ``execute``) proportional to what is live, not to the connection's history.
        """
        live = []
        done = []
        find = self.service.live
        for eid in self.started:
            execution = find(eid)
            if execution is None or execution.finished:
                done.append(eid)
            else:
                live.append(execution)
        for eid in done:
            self.started.discard(eid)
        return live

    def follow(self, execution_id: str, after_seq: int) -> None:
        """Subscribe (again) to an execution from ``after_seq``; replaces an older subscription.

        A live execution streams from its event log; a past one (finished and forgotten, or
        run by an earlier daemon) is replayed from the store.
        """
        if self._tasks is None:  # the connection is closing
            return
        old = self.followers.pop(execution_id, None)
        if old is not None:
            old.cancel()
        task = self._tasks.create_task(self._forward(execution_id, after_seq))
        self.followers[execution_id] = task
        task.add_done_callback(lambda t: self._forget(execution_id, t))

    async def send_ready_then_follow(self, execution: Execution, after_seq: int) -> None:
        """Send what the log already holds past ``after_seq``, then :meth:`follow` from there.

        Runs in the read loop right after the response, so the first events (``process.started``,
        early output) do not wait for the follower task's first loop turn. Bounded: only events
        present when called (at most :data:`INLINE_EVENTS_MAX`), and it stops at a gap; the
        follower starts after the last seq sent here, so nothing is sent twice or skipped.
        """
        sent = after_seq
        last = min(execution.log.last_seq, after_seq + INLINE_EVENTS_MAX)
        if sent < last:
            for item in execution.log.events_after(sent):
                if isinstance(item, Gap) or item.seq > last:
                    break
                await self.send(item.frame)
                sent = item.seq
                if sent >= last:
                    break
        self.follow(execution.id, sent)

    def unfollow(self, execution_id: str) -> bool:
        task = self.followers.pop(execution_id, None)
        if task is None:
            return False
        task.cancel()
        return True

    def _forget(self, execution_id: str, task: asyncio.Task[None]) -> None:
        if self.followers.get(execution_id) is task:
            del self.followers[execution_id]

    async def _forward(self, execution_id: str, after_seq: int) -> None:
        try:
            await self._forward_events(execution_id, after_seq)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # task top level: a dead socket ends this follower only
            if self.websocket.client_state.name == "CONNECTED":
                logger.exception("follower of {} failed", execution_id)
            else:
                logger.debug("follower of {} stopped: {!r}", execution_id, exc)

    async def _forward_events(self, execution_id: str, after_seq: int) -> None:
        async for item in self.service.follow(execution_id, after_seq):
            if isinstance(item, Gap):
                frame = encode_notification(
                    Notification.STREAM_GAP,
                    {
                        "execution_id": execution_id,
                        "from_seq": item.from_seq,
                        "to_seq": item.to_seq,
                    },
                )
                await self.send(frame)
            else:
                await self.send(item.frame)


def _resolve_execution_id(conn: Connection, execution_id: str | None) -> str:
    if execution_id is not None:
        return execution_id
    live: set[str] = {e.id for e in conn.live_started()}
    for eid in conn.followers:
        execution = conn.service.live(eid)
        if execution is not None and not execution.finished:
            live.add(eid)
    if len(live) == 1:
        return live.pop()
    raise InvalidParams(
        f"execution_id is required: this connection has {len(live)} live executions",
        live_executions=sorted(live),
    )


async def _execute(conn: Connection, params: ExecuteParams) -> dict[str, Any]:
    if (params.execution_id is None or conn.service.live(params.execution_id) is None) and len(
        conn.started
    ) >= conn.max_executions:
        # ``started`` holds every live one (and some finished): only when it is that full can
        # the limit be reached, so the O(live) count is not paid on every execute.
        running = len(conn.live_started())
        if running >= conn.max_executions:
            raise LimitReached(
                "too many running executions on this connection",
                limit=conn.max_executions,
                running=running,
            )
    # command, argv, agent + prompt, or a `claude` command: the service runs the hooks, predicts
    # a timeout, builds the spec (InvalidParams for an unknown agent) and starts it.
    execution = await conn.service.execute(params)
    conn.started.add(execution.id)
    conn.after_response.append(lambda: conn.send_ready_then_follow(execution, 0))
    return {
        "execution_id": execution.id,
        "status": "started",
        "pid": execution.pid,
        "pgid": execution.pgid,
    }


_CONTROL_STATUS = {
    ControlType.PAUSE: "paused",
    ControlType.RESUME: "resumed",
    ControlType.CANCEL: "canceled",
}


async def _control(conn: Connection, params: ControlParams) -> dict[str, Any]:
    eid = _resolve_execution_id(conn, params.execution_id)
    kind = ControlType(params.type)
    await conn.service.control(eid, kind.value)
    return {"execution_id": eid, "status": _CONTROL_STATUS[kind]}


async def _hook_status(conn: Connection, params: EmptyParams) -> dict[str, Any]:
    return conn.service.hook_status()


async def _status(conn: Connection, params: StatusParams) -> dict[str, Any]:
    return await conn.service.status(params.execution_id)


async def _list(conn: Connection, params: ListParams) -> dict[str, Any]:
    states = [params.state] if isinstance(params.state, str) else params.state
    return {"executions": await conn.service.list(states=states, limit=params.limit)}


async def _attach(conn: Connection, params: AttachParams) -> dict[str, Any]:
    eid = params.execution_id
    last = await conn.service.last_seq(eid)  # -32003 when neither live nor stored
    replayed = max(0, last - params.after_seq)
    conn.after_response.append(lambda: conn.follow(eid, params.after_seq))
    return {"execution_id": eid, "replayed": replayed, "last_seq": last}


async def _detach(conn: Connection, params: DetachParams) -> dict[str, Any]:
    await conn.service.ensure_known(params.execution_id)  # unknown ids are -32003
    was_attached = conn.unfollow(params.execution_id)
    return {"execution_id": params.execution_id, "detached": was_attached}


async def _input(conn: Connection, params: InputParams) -> dict[str, Any]:
    data = params.to_bytes()  # base64 was checked when the params were validated
    written = await conn.service.write_input(params.execution_id, data, eof=params.eof)
    return {"execution_id": params.execution_id, "bytes_written": written}


class _ListSubscriber:
    """Sends a list's ``task.*`` notifications and follows each task's execution.

    Notifications that arrive before the ``task_list.create`` response is out are held and sent
    right after it, so the response always comes first.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pending: list[tuple[str, dict[str, Any], str]] | None = []

    def __call__(self, method: str, params: dict[str, Any], frame: str) -> None:
        if self.pending is not None:
            self.pending.append((method, params, frame))
            return
        tasks = self.conn._tasks
        if tasks is None:
            return
        # The notification first, then the task's own events: the follower's first send queues
        # behind it on the (FIFO) send lock.
        tasks.create_task(self.conn.send(frame))
        if method == Notification.TASK_STARTED:
            self.conn.follow(str(params["execution_id"]), 0)

    def ready(self) -> None:
        pending, self.pending = self.pending or [], None
        for item in pending:
            self(*item)


async def _task_list_create(conn: Connection, params: TaskListCreateParams) -> dict[str, Any]:
    subscriber = _ListSubscriber(conn)
    result = await conn.task_lists.create(params)
    # No await since create() started the list: its runner has not run yet, nothing is missed.
    conn.list_subscriptions.append(conn.task_lists.subscribe(result["list_id"], subscriber))
    conn.after_response.append(subscriber.ready)
    return result


async def _task_list_status(conn: Connection, params: TaskListParams) -> dict[str, Any]:
    return await conn.task_lists.status(params.list_id)


async def _task_list_pause(conn: Connection, params: TaskListPauseParams) -> dict[str, Any]:
    return await conn.task_lists.pause(params.list_id, pause_running=params.pause_running)


async def _task_list_resume(conn: Connection, params: TaskListParams) -> dict[str, Any]:
    return await conn.task_lists.resume(params.list_id)


async def _task_list_cancel(conn: Connection, params: TaskListParams) -> dict[str, Any]:
    return await conn.task_lists.cancel(params.list_id)


async def _pong(conn: Connection, params: PongParams) -> None:
    return None


def build_dispatcher(*, max_frame_bytes: int) -> Dispatcher[Connection]:
    """The one dispatcher of the WebSocket door: every method and its params model."""
    dispatcher: Dispatcher[Connection] = Dispatcher(max_frame_bytes=max_frame_bytes)
    dispatcher.register(Method.EXECUTE, ExecuteParams, _execute)
    dispatcher.register(Method.CONTROL, ControlParams, _control)
    dispatcher.register(Method.HOOK_STATUS, EmptyParams, _hook_status)
    dispatcher.register(Method.STATUS, StatusParams, _status)
    dispatcher.register(Method.LIST, ListParams, _list)
    dispatcher.register(Method.ATTACH, AttachParams, _attach)
    dispatcher.register(Method.DETACH, DetachParams, _detach)
    dispatcher.register(Method.INPUT, InputParams, _input)
    dispatcher.register(Method.PONG, PongParams, _pong)
    dispatcher.register(Method.TASK_LIST_CREATE, TaskListCreateParams, _task_list_create)
    dispatcher.register(Method.TASK_LIST_STATUS, TaskListParams, _task_list_status)
    dispatcher.register(Method.TASK_LIST_PAUSE, TaskListPauseParams, _task_list_pause)
    dispatcher.register(Method.TASK_LIST_RESUME, TaskListParams, _task_list_resume)
    dispatcher.register(Method.TASK_LIST_CANCEL, TaskListParams, _task_list_cancel)
    return dispatcher


class WebSocketFastPath:
    """ASGI middleware that hands ``/ws/mcp`` handshakes straight to the door.

    Every open WebSocket keeps its whole ASGI call stack alive for as long as it lives. Through
    Starlette's router that is the exception middleware, the router, the route and FastAPI's
    exit stacks: about a fifth of the memory of an idle connection. The door checks Host,
    Origin and token itself before accepting, so nothing between here and it is needed.
    """

    def __init__(self, app: ASGIApp, *, path: str, door: WebSocketDoor) -> None:
        self.app = app
        self.path = path
        self.door = door

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == self.path:
            await self.door(WebSocket(scope, receive, send))
            return
        await self.app(scope, receive, send)


@dataclass
class WebSocketDoor:
    """Everything the endpoint needs, fixed at app creation."""

    service: ExecutionService
    task_lists: TaskLists
    dispatcher: Dispatcher[Connection]
    token: str | None
    hosts: frozenset[str]
    origins: frozenset[str]
    max_executions_per_connection: int
    cancel_on_disconnect: bool

    async def __call__(self, websocket: WebSocket) -> None:
        headers = {k.lower(): v for k, v in websocket.headers.items()}
        decision = authorize_websocket(
            headers, token=self.token, hosts=self.hosts, origins=self.origins
        )
        if not decision.allowed:
            client = websocket.client
            logger.warning(
                "refused WebSocket from {}: {} ({})",
                f"{client.host}:{client.port}" if client else "?",
                decision.reason,
                decision.status,
            )
            await websocket.send_denial_response(
                JSONResponse({"error": decision.reason}, status_code=decision.status)
            )
            return
        await websocket.accept(subprotocol=decision.subprotocol)
        conn = Connection(
            websocket, self.service, self.task_lists, self.max_executions_per_connection
        )
        logger.info("connection {} opened", conn.session_id)
        try:
            await self._serve(conn)
        finally:
            logger.info("connection {} closed", conn.session_id)
            if self.cancel_on_disconnect:
                await self._cancel_started(conn)

    async def _serve(self, conn: Connection) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                conn._tasks = tasks
                await conn.send(
                    encode_notification(
                        Notification.CONNECTED,
                        {
                            "session_id": conn.session_id,
                            "version": __version__,
                            "protocol_version": PROTOCOL_VERSION,
                            "capabilities": CAPABILITIES,
                        },
                    )
                )
                await self._read_loop(conn)
                for task in list(conn.followers.values()):
                    task.cancel()
        except* WebSocketDisconnect:
            pass
        finally:
            conn._tasks = None
            for unsubscribe in conn.list_subscriptions:
                unsubscribe()

    async def _read_loop(self, conn: Connection) -> None:
        while True:
            message = await conn.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw: str | bytes | None = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            frame = await self.dispatcher.dispatch(raw, conn)
            if frame is not None:
                await conn.send(frame)
            actions, conn.after_response = conn.after_response, []
            for action in actions:
                pending = action()
                if pending is not None:
                    await pending

    async def _cancel_started(self, conn: Connection) -> None:
        for execution in conn.live_started():
            try:
                await self.service.cancel(execution.id)
            except Exception:  # a race with natural completion is fine; log anything else
                logger.exception("cancel on disconnect failed for {}", execution.id)
