"""``WebSocketClient``: the async client of the daemon's ``/ws/mcp`` JSON-RPC door.

Owns one WebSocket connection at a time and one *runner* task per ``connect()``: the runner reads
every frame, resolves request futures by id, routes notifications by ``execution_id`` to their
:class:`ExecutionHandle` (and a task list's ``task.*`` ones by ``list_id`` to its
:class:`~cc_executor.client.task_list.TaskListHandle`), and, when the connection drops without
the user closing it, reconnects with bounded backoff and re-``attach``es every live handle from
its last seq. ``close()`` always cancels and awaits the runner.

Liveness is left to WebSocket ping/pong frames (answered by the library); there is no read
timeout on the event stream, so a run of hours is never cut by the client. Requests (as opposed
to streams) are bounded by ``request_timeout``.

This module is the one that keeps the earlier CC Executor's Python names:
``WebSocketClient(host=..., port=...)`` and ``execute_command(command, timeout)`` returning
``{success, output_data, error, exit_code, ...}``. The import path
``cc_executor.client.client.WebSocketClient`` keeps working.

Past 500 lines on purpose: the runner (connect, read, reconnect, re-attach) and the public
methods share one set of private state (pending futures, handles, the live socket); splitting
them would turn that state into an interface. Events and handles live in their own modules.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from cc_executor import __version__
from cc_executor.client.errors import (
    ClientClosed,
    ConnectionLost,
    DaemonUnreachable,
    HandshakeRefused,
)
from cc_executor.client.events import event_from_notification
from cc_executor.client.handle import (
    DEFAULT_MAX_BUFFERED_BYTES,
    DEFAULT_MAX_BUFFERED_EVENTS,
    CommandResult,
    ExecutionHandle,
    Feed,
)
from cc_executor.client.task_list import LIST_NOTIFICATIONS, TaskListEvent, TaskListHandle
from cc_executor.config import DEFAULT_PORT
from cc_executor.errors import CCExecutorError, ParseError, error_from_wire
from cc_executor.protocol.jsonrpc import encode_request, parse_message
from cc_executor.protocol.names import Method, Notification

__all__ = [
    "CLIENT_MAX_FRAME_BYTES",
    "OPEN_TIMEOUT_S",
    "PING_INTERVAL_S",
    "PING_TIMEOUT_S",
    "RECONNECT_ATTEMPTS",
    "REQUEST_TIMEOUT_S",
    "WebSocketClient",
    "result_dict",
]

OPEN_TIMEOUT_S = 10.0  # TCP connect + handshake; a local daemon answers in milliseconds
REQUEST_TIMEOUT_S = 120.0  # one request/response; CANCEL waits out the TERM grace on the daemon
PING_INTERVAL_S = 20.0  # WebSocket ping frames keep NATs and the daemon's liveness check happy
PING_TIMEOUT_S = 120.0  # generous: a busy daemon must not look dead; a drop only means re-attach
CLOSE_TIMEOUT_S = 5.0  # closing handshake
CLIENT_MAX_FRAME_BYTES = 64 * 1024 * 1024  # list/status results can exceed one output piece
RECONNECT_ATTEMPTS = 8
RECONNECT_BACKOFF_INITIAL_S = 0.1
RECONNECT_BACKOFF_MAX_S = 5.0
# A call made while reconnecting waits at most this long for the connection to come back.
RECONNECT_WAIT_S = (
    OPEN_TIMEOUT_S * RECONNECT_ATTEMPTS + RECONNECT_BACKOFF_MAX_S * RECONNECT_ATTEMPTS
)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def result_dict(result: CommandResult) -> dict[str, Any]:
    """The earlier ``execute_command`` shape for a finished execution."""
    completed = result.completed
    stderr = result.stderr.decode(errors="replace")
    error: str | None = stderr or None
    if not completed.success and not stderr:
        if completed.status == "timeout":
            error = "timed out"
        elif completed.status == "canceled":
            error = "canceled"
        elif completed.signal is not None:
            error = f"killed by signal {completed.signal}"
        else:
            error = f"{completed.status} (exit code {completed.exit_code})"
    return {
        "success": completed.success,
        "output_data": result.stdout.decode(errors="replace"),
        "error": error,
        "exit_code": completed.exit_code,
        "execution_id": completed.execution_id,
        "status": completed.status,
        "execution_time": completed.execution_time,
    }


class WebSocketClient:
    """Async client of one daemon. Use ``async with WebSocketClient() as client: ...``.

    The token is, in order: ``token``; the contents of ``token_file``; ``Settings().token``
    (``CC_EXECUTOR_TOKEN``); the daemon's token file ``Settings().token_file``. Methods connect
    lazily when called on a client that is not connected.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
        *,
        url: str | None = None,
        token_file: Path | str | None = None,
        reconnect: bool = True,
        open_timeout: float = OPEN_TIMEOUT_S,
        reconnect_attempts: int = RECONNECT_ATTEMPTS,
        request_timeout: float = REQUEST_TIMEOUT_S,
        ping_interval: float | None = PING_INTERVAL_S,
        ping_timeout: float | None = PING_TIMEOUT_S,
        max_buffered_events: int = DEFAULT_MAX_BUFFERED_EVENTS,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        self.url = url or f"ws://{_bracket(host)}:{port}/ws/mcp"
        self._token = token
        self._token_file = Path(token_file) if token_file is not None else None
        self._reconnect = reconnect
        self._open_timeout = open_timeout
        self._reconnect_attempts = reconnect_attempts
        self._request_timeout = request_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._max_buffered_events = max_buffered_events
        self._max_buffered_bytes = max_buffered_bytes
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ignored: set[int] = set()  # ids of fire-and-forget requests (pong, detach)
        self._handles: dict[str, ExecutionHandle] = {}
        self._lists: dict[str, TaskListHandle] = {}
        self._ws: ClientConnection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()  # set while online, and once the runner has given up
        self._closing = False
        self._fatal: CCExecutorError | None = None
        self._connect_lock = asyncio.Lock()
        self.server_info: dict[str, Any] = {}
        """The ``connected`` notification's params (session_id, version, capabilities)."""

    # --- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """Whether a runner is active (online, or reconnecting)."""
        return self._runner is not None and not self._runner.done()

    async def connect(self) -> None:
        """Open the connection and start the runner. Raises :class:`DaemonUnreachable` or
        :class:`HandshakeRefused` when the daemon cannot be reached or refuses the token."""
        async with self._connect_lock:
            if self.connected:
                return
            self._closing = False
            self._fatal = None
            ws = await self._open()
            self._go_online(ws)
            self._runner = asyncio.create_task(self._run(ws), name=f"cc-executor-client {self.url}")

    async def close(self) -> None:
        """Close the connection and stop the runner; waiting streams raise :class:`ClientClosed`.

        Executions keep running on the daemon.
        """
        self._closing = True
        runner, self._runner = self._runner, None
        ws = self._ws
        if ws is not None:
            await ws.close()
        if runner is not None:
            runner.cancel()
            await asyncio.wait({runner})

    # --- connection -----------------------------------------------------------------------------
    def _resolve_token(self) -> str | None:
        if self._token is not None:
            return self._token
        from cc_executor.tokens import read_token

        if self._token_file is not None:
            return read_token(self._token_file)
        from cc_executor.config import Settings  # built lazily: only when no token was given

        settings = Settings()
        if settings.token is not None:
            return settings.token.get_secret_value()
        self._token_file = settings.token_file
        return read_token(settings.token_file)

    def _token_hint(self) -> str:
        where = f"the token file {self._token_file}" if self._token_file else "the token file"
        return (
            f"the client sends the token from the `token` argument, CC_EXECUTOR_TOKEN or {where}; "
            "`cc-executor server token` prints the daemon's"
        )

    async def _open(self) -> ClientConnection:
        token = self._resolve_token()
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            ws = await connect(
                self.url,
                additional_headers=headers,
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                close_timeout=CLOSE_TIMEOUT_S,
                max_size=CLIENT_MAX_FRAME_BYTES,
                compression=None,  # permessage-deflate costs more CPU than it saves on loopback
                user_agent_header=f"cc-executor-client/{__version__}",
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                why = "missing or wrong token" if token is None or status == 401 else "refused"
                raise HandshakeRefused(
                    f"the daemon at {self.url} refused the connection (HTTP {status}: {why}); "
                    + self._token_hint(),
                    url=self.url,
                    status=status,
                ) from None
            raise HandshakeRefused(
                f"the daemon at {self.url} refused the WebSocket handshake (HTTP {status})",
                url=self.url,
                status=status,
            ) from None
        except InvalidURI as exc:
            raise DaemonUnreachable(f"invalid daemon URL {self.url}: {exc}", url=self.url) from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise DaemonUnreachable(
                f"no cc-executor daemon reachable at {self.url} ({exc or type(exc).__name__}); "
                "start one with `cc-executor server start`",
                url=self.url,
            ) from None
        await self._hello(ws)
        return ws

    async def _hello(self, ws: ClientConnection) -> None:
        """Read the ``connected`` notification the daemon sends first, so ``server_info`` is
        known when ``connect()`` returns. Nothing else can precede it: nothing was asked yet."""
        try:
            raw = await asyncio.wait_for(ws.recv(), self._open_timeout)
            message = parse_message(raw)
        except (TimeoutError, ConnectionClosed, ParseError) as exc:
            await ws.close()
            raise DaemonUnreachable(
                f"the daemon at {self.url} accepted but sent no `connected` greeting ({exc!r})",
                url=self.url,
            ) from None
        if isinstance(message, dict) and message.get("method") == Notification.CONNECTED:
            params = message.get("params")
            self.server_info = params if isinstance(params, dict) else {}

    def _go_online(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ready.set()

    def _go_offline(self) -> None:
        self._ws = None
        self._ready.clear()
        lost = ConnectionLost(f"connection to {self.url} dropped", url=self.url)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(lost)
        self._pending.clear()
        self._ignored.clear()
        # The daemon does not replay list notifications to a new connection: a list handle
        # cannot go on; the list itself keeps running and ``task_list_status`` tells its state.
        for handle in self._lists.values():
            handle._fail(
                ClientClosed("client closed", url=self.url)
                if self._closing
                else ConnectionLost(
                    f"connection to {self.url} dropped; task list notifications are not "
                    "replayed: poll task_list_status",
                    url=self.url,
                    list_id=handle.list_id,
                )
            )
        self._lists.clear()

    async def _run(self, ws: ClientConnection) -> None:
        reattach = False
        try:
            while True:
                self._go_online(ws)
                await self._serve(ws, reattach=reattach)
                if self._closing:
                    break
                if not self._reconnect:
                    raise ConnectionLost(f"connection to {self.url} dropped", url=self.url)
                logger.info("connection to {} dropped; reconnecting", self.url)
                ws = await self._reconnect_with_backoff()
                reattach = True
        except CCExecutorError as exc:
            self._fatal = exc
        except Exception as exc:  # runner top level: fail the waiters instead of hanging them
            logger.exception("client runner for {} failed", self.url)
            self._fatal = ConnectionLost(f"client runner failed: {exc!r}", url=self.url)
        finally:
            self._go_offline()
            failure: CCExecutorError = self._fatal or ClientClosed("client closed", url=self.url)
            self._fatal = failure
            for handle in list(self._handles.values()):
                handle._fail(failure)
            self._handles.clear()
            self._ready.set()  # wake callers so they see the failure instead of waiting

    async def _serve(self, ws: ClientConnection, *, reattach: bool) -> None:
        async with asyncio.TaskGroup() as tasks:
            if reattach:
                tasks.create_task(self._reattach_all())
            try:
                await self._read_loop(ws)
            finally:
                # Fail requests still waiting (the re-attach task among them) so the group ends.
                self._go_offline()

    async def _reconnect_with_backoff(self) -> ClientConnection:
        delay = RECONNECT_BACKOFF_INITIAL_S
        last: CCExecutorError | None = None
        for attempt in range(1, self._reconnect_attempts + 1):
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter only
            try:
                return await self._open()
            except DaemonUnreachable as exc:
                last = exc
                logger.info(
                    "reconnect {}/{} to {} failed", attempt, self._reconnect_attempts, self.url
                )
            delay = min(delay * 2, RECONNECT_BACKOFF_MAX_S)
        raise ConnectionLost(
            f"lost the connection to {self.url} and could not reconnect after "
            f"{self._reconnect_attempts} attempts ({last})",
            url=self.url,
        )

    async def _reattach_all(self) -> None:
        for handle in list(self._handles.values()):
            if not handle.wants_attach:
                continue
            handle._begin_resync()
            try:
                await self._call(
                    Method.ATTACH,
                    {"execution_id": handle.execution_id, "after_seq": handle.last_seq},
                )
            except ConnectionLost:
                return  # dropped again; the next connection re-attaches
            except CCExecutorError as exc:  # e.g. ExecutionNotFound: pruned while we were away
                handle._fail(exc)
                self._release(handle)
            finally:
                handle._end_resync()

    # --- reading --------------------------------------------------------------------------------
    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                await self._on_frame(raw)
        except ConnectionClosed as exc:
            logger.debug("connection to {} closed: {}", self.url, exc)

    async def _on_frame(self, raw: str | bytes) -> None:
        try:
            message = parse_message(raw)
        except ParseError:
            logger.warning("ignoring a frame from {} that is not JSON", self.url)
            return
        if not isinstance(message, dict):
            return
        if "method" in message:
            params = message.get("params")
            await self._on_notification(
                str(message["method"]), params if isinstance(params, dict) else {}
            )
            return
        request_id = message.get("id")
        if not isinstance(request_id, int):
            return
        if request_id in self._ignored:
            self._ignored.discard(request_id)
            return
        future = self._pending.pop(request_id, None)
        if future is None or future.done():
            return
        error = message.get("error")
        if isinstance(error, dict):
            future.set_exception(error_from_wire(error))
        else:
            result = message.get("result")
            future.set_result(result if isinstance(result, dict) else {})

    async def _on_notification(self, method: str, params: dict[str, Any]) -> None:
        if method == Notification.CONNECTED:
            self.server_info = params
            return
        if method == Notification.PING:
            await self._send_ignored(Method.PONG, {})
            return
        list_id = params.get("list_id")
        if method in LIST_NOTIFICATIONS and isinstance(list_id, str) and list_id in self._lists:
            self._on_list_notification(self._lists[list_id], method, params)
            return
        execution_id = params.get("execution_id")
        handle = self._handles.get(execution_id) if isinstance(execution_id, str) else None
        if handle is None:
            logger.debug("{} for an execution this client does not follow", method)
            return
        if handle._feed(event_from_notification(method, params)) is Feed.OVERFLOW:
            # Nobody is consuming: stop the flow; the handle re-attaches once drained. The detach
            # frame is written before this reader takes the next frame, and the consumer can only
            # re-attach after draining, so on the wire detach always precedes that attach (the
            # daemon handles one connection's requests in order).
            await self._send_ignored(Method.DETACH, {"execution_id": execution_id})

    def _on_list_notification(
        self, handle: TaskListHandle, method: str, params: dict[str, Any]
    ) -> None:
        execution: ExecutionHandle | None = None
        execution_id = params.get("execution_id")
        if (
            method == Notification.TASK_STARTED
            and handle.follow_tasks
            and isinstance(execution_id, str)
        ):
            # Registered now, in the reader: the daemon sends this notification before the
            # task's first event, so no event of the task can miss its handle.
            execution = self._handles.get(execution_id) or self._new_handle(
                execution_id, capture=False
            )
        event = TaskListEvent(method, handle.list_id, params, execution)
        handle._feed(event)
        if event.final:
            self._release_list(handle)

    def _release_list(self, handle: TaskListHandle) -> None:
        if self._lists.get(handle.list_id) is handle:
            del self._lists[handle.list_id]

    # --- requests -------------------------------------------------------------------------------
    async def _connection(self) -> ClientConnection:
        if not self.connected:
            await self.connect()
        try:
            await asyncio.wait_for(self._ready.wait(), RECONNECT_WAIT_S)
        except TimeoutError:
            raise ConnectionLost(f"not reconnected to {self.url} in time", url=self.url) from None
        if self._ws is None:
            raise self._fatal or ClientClosed("client closed", url=self.url)
        return self._ws

    async def _send_ignored(self, method: str, params: Mapping[str, Any]) -> None:
        """Send a request whose response nobody waits for (the reader discards it)."""
        ws = self._ws
        if ws is None:
            return
        request_id = next(self._ids)
        self._ignored.add(request_id)
        try:
            await ws.send(encode_request(request_id, method, params))
        except ConnectionClosed:
            self._ignored.discard(request_id)

    async def _call(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One request; returns its result or raises the error class the daemon raised."""
        ws = await self._connection()
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            try:
                await ws.send(encode_request(request_id, method, params))
            except ConnectionClosed:
                raise ConnectionLost(
                    f"connection to {self.url} dropped while sending {method}", url=self.url
                ) from None
            try:
                return await asyncio.wait_for(future, self._request_timeout)
            except TimeoutError:
                raise ConnectionLost(
                    f"no response to {method} from {self.url} within {self._request_timeout}s",
                    url=self.url,
                ) from None
        finally:
            self._pending.pop(request_id, None)

    def _release(self, handle: ExecutionHandle) -> None:
        if self._handles.get(handle.execution_id) is handle:
            del self._handles[handle.execution_id]

    def _new_handle(self, execution_id: str, *, capture: bool) -> ExecutionHandle:
        handle = ExecutionHandle(
            self,
            execution_id,
            capture=capture,
            max_buffered_events=self._max_buffered_events,
            max_buffered_bytes=self._max_buffered_bytes,
        )
        self._handles[execution_id] = handle
        return handle

    # --- public API -----------------------------------------------------------------------------
    async def execute(
        self,
        command: str | None = None,
        *,
        argv: list[str] | None = None,
        agent: str | None = None,
        prompt: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the daemon's limit, not a wait bound
        idle_timeout: float | None = None,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        execution_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        stdin: bool = False,
        capture: bool = True,
        **extra: Any,
    ) -> ExecutionHandle:
        """Start ``command`` (shell), ``argv`` (no shell) or ``agent`` + ``prompt``.

        Returns once the daemon has started the group; iterate the handle for its events. The
        execution id is chosen here when not given, so no event can precede the handle. If the
        connection drops before the daemon answers, :class:`ConnectionLost` is raised and the
        execution may or may not exist: ``execute`` with the same ``execution_id`` is idempotent,
        or ``attach`` to it.
        """
        eid = execution_id or str(uuid.uuid4())
        params: dict[str, Any] = {
            "command": command,
            "argv": list(argv) if argv is not None else None,
            "agent": agent,
            "prompt": prompt,
            "timeout": timeout,
            "idle_timeout": idle_timeout,
            "cwd": str(cwd) if cwd is not None else None,
            "env": dict(env) if env is not None else None,
            "execution_id": eid,
            "metadata": dict(metadata) if metadata is not None else None,
            "stdin": True if stdin else None,
            **extra,
        }
        params = {k: v for k, v in params.items() if v is not None}
        await self._connection()
        handle = self._new_handle(eid, capture=capture)
        try:
            result = await self._call(Method.EXECUTE, params)
        except BaseException:
            self._release(handle)
            raise
        handle.pid = result.get("pid") if isinstance(result.get("pid"), int) else None
        handle.pgid = result.get("pgid") if isinstance(result.get("pgid"), int) else None
        return handle

    async def run(self, command: str | None = None, **kwargs: Any) -> CommandResult:
        """Execute and wait: the final event with the captured stdout and stderr."""
        handle = await self.execute(command, **kwargs)
        return await handle.result()

    async def execute_command(
        self,
        command: str,
        timeout: float | None = None,  # noqa: ASYNC109 - the daemon's limit, not a wait bound
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The earlier CC Executor's call: run ``command`` and return a result dict.

        ``{"success", "output_data" (stdout text), "error" (stderr text or the failure reason),
        "exit_code", "execution_id", "status", "execution_time"}``. Never raises for a failed
        command or a daemon error; ``success`` is ``False`` and ``error`` says why. A client that
        is not connected connects for this call only.
        """
        owns_connection = not self.connected
        try:
            if owns_connection:
                await self.connect()
            result = await self.run(command, timeout=timeout, **kwargs)
            return result_dict(result)
        except CCExecutorError as exc:
            return {
                "success": False,
                "output_data": "",
                "error": str(exc),
                "exit_code": None,
                "execution_id": kwargs.get("execution_id"),
                "status": "error",
                "execution_time": None,
            }
        finally:
            if owns_connection:
                await self.close()

    async def attach(
        self, execution_id: str, after_seq: int = 0, *, capture: bool = True
    ) -> ExecutionHandle:
        """Follow an execution (started by anyone) from ``after_seq``: replay, then live."""
        await self._connection()
        existing = self._handles.get(execution_id)
        if existing is not None:
            return existing
        handle = self._new_handle(execution_id, capture=capture)
        handle._last_seq = after_seq
        try:
            await self._call(Method.ATTACH, {"execution_id": execution_id, "after_seq": after_seq})
        except BaseException:
            self._release(handle)
            raise
        return handle

    async def detach(self, execution_id: str) -> None:
        """Stop following an execution; it keeps running on the daemon."""
        handle = self._handles.get(execution_id)
        if handle is not None:
            await handle.detach()
        else:
            await self._call(Method.DETACH, {"execution_id": execution_id})

    async def status(self, execution_id: str) -> dict[str, Any]:
        """State, pid, pgid, exit code, times and last seq of one execution."""
        return await self._call(Method.STATUS, {"execution_id": execution_id})

    async def list_executions(
        self, state: str | list[str] | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Executions the daemon knows, newest first, optionally filtered by state."""
        params: dict[str, Any] = {"limit": limit}
        if state is not None:
            params["state"] = state
        result = await self._call(Method.LIST, params)
        executions = result.get("executions", [])
        return (
            [e for e in executions if isinstance(e, dict)] if isinstance(executions, list) else []
        )

    async def hook_status(self) -> dict[str, Any]:
        """Hooks configured, enabled, and their last runs."""
        return await self._call(Method.HOOK_STATUS, {})

    # --- task lists -------------------------------------------------------------------------------
    async def task_list_create(
        self,
        tasks: Sequence[Mapping[str, Any]],
        *,
        name: str | None = None,
        timeout_per_task: float | None = None,
        on_failure: str = "stop",
        list_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        follow_tasks: bool = True,
    ) -> TaskListHandle:
        """Create a durable task list on the daemon (``task_list.create``) and follow it.

        Each task is an ``execute`` request (``command``/``argv``/``agent`` + ``prompt``,
        ``timeout``, ``cwd``, ``env``, ``agent_options``, ...) plus ``retries``, ``on_failure``
        and ``depends_on``. Returns a :class:`TaskListHandle`: iterate it for the list's
        ``task.*`` notifications until ``task_list.completed``; with ``follow_tasks`` each
        ``task.started`` carries the task execution's :class:`ExecutionHandle` (iterate it or
        ``detach()`` it). The list belongs to the daemon: it runs on when this client goes away.
        """
        lid = list_id or uuid.uuid4().hex
        params: dict[str, Any] = {
            "tasks": [dict(task) for task in tasks],
            "name": name,
            "timeout_per_task": timeout_per_task,
            "on_failure": on_failure,
            "list_id": lid,
            "metadata": dict(metadata) if metadata is not None else None,
        }
        await self._connection()
        handle = TaskListHandle(self, lid, follow_tasks=follow_tasks)
        self._lists[lid] = handle
        try:
            handle.created = await self._call(
                Method.TASK_LIST_CREATE, {k: v for k, v in params.items() if v is not None}
            )
        except BaseException:
            self._release_list(handle)
            raise
        return handle

    async def task_list_status(self, list_id: str) -> dict[str, Any]:
        """``task_list.status``: the list's state and counts, and every task's state, attempts,
        execution ids, exit code and error."""
        return await self._call(Method.TASK_LIST_STATUS, {"list_id": list_id})

    async def task_list_pause(self, list_id: str, *, pause_running: bool = False) -> dict[str, Any]:
        """``task_list.pause``: hold the queue; ``pause_running`` also SIGSTOPs the running task."""
        return await self._call(
            Method.TASK_LIST_PAUSE, {"list_id": list_id, "pause_running": pause_running}
        )

    async def task_list_resume(self, list_id: str) -> dict[str, Any]:
        """``task_list.resume``: release a paused list (and a SIGSTOPped running task)."""
        return await self._call(Method.TASK_LIST_RESUME, {"list_id": list_id})

    async def task_list_cancel(self, list_id: str) -> dict[str, Any]:
        """``task_list.cancel``: cancel the running task and every task not yet run."""
        return await self._call(Method.TASK_LIST_CANCEL, {"list_id": list_id})
