"""A scripted fake of the daemon's ``/ws/mcp`` door, for client tests.

It speaks just enough JSON-RPC: checks the bearer token in the handshake, sends ``connected``,
answers each request with the test's handler (each request in its own task, so responses can be
out of order), sends a handler's queued notifications after its response (the real door's
ordering), and keeps every request it received in an awaitable queue. Nothing sleeps; every wait
is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from cc_executor.errors import CCExecutorError

TOKEN = "fake-daemon-token-0123456789"
WAIT_S = 10.0

Handler = Callable[["FakeConn", dict[str, Any]], Awaitable[dict[str, Any] | None]]


@dataclass
class FakeConn:
    """One accepted client connection."""

    ws: ServerConnection
    later: list[str] = field(default_factory=list)

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self.ws.send(
            orjson.dumps({"jsonrpc": "2.0", "method": method, "params": params}).decode()
        )

    def notify_after_response(self, method: str, params: dict[str, Any]) -> None:
        self.later.append(
            orjson.dumps({"jsonrpc": "2.0", "method": method, "params": params}).decode()
        )

    def drop(self) -> None:
        """Cut the TCP connection without a closing handshake (a crash or a network drop)."""
        self.ws.transport.abort()


class FakeDaemon:
    def __init__(self, token: str | None = TOKEN) -> None:
        self.token = token
        self.handlers: dict[str, Handler] = {}
        self.requests: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.connections: asyncio.Queue[FakeConn] = asyncio.Queue()
        self.all_connections: list[FakeConn] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/mcp"

    def on(self, method: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.handlers[method] = handler
            return handler

        return register

    async def next_request(self, method: str | None = None) -> tuple[str, dict[str, Any]]:
        """The next request received (of ``method``, skipping others)."""
        async with asyncio.timeout(WAIT_S):
            while True:
                got = await self.requests.get()
                if method is None or got[0] == method:
                    return got

    async def next_connection(self) -> FakeConn:
        async with asyncio.timeout(WAIT_S):
            return await self.connections.get()

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if self.token is None:
            return None
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return conn.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        conn = FakeConn(ws)
        self.all_connections.append(conn)
        await conn.notify("connected", {"session_id": "s", "version": "fake"})
        self.connections.put_nowait(conn)
        async with asyncio.TaskGroup() as tasks:
            async for raw in ws:
                message = orjson.loads(raw)
                tasks.create_task(self._answer(conn, message))

    async def _answer(self, conn: FakeConn, message: dict[str, Any]) -> None:
        method, params = message["method"], message.get("params") or {}
        self.requests.put_nowait((method, params))
        handler = self.handlers.get(method)
        try:
            result = await handler(conn, params) if handler else {}
        except CCExecutorError as exc:
            frame = {"jsonrpc": "2.0", "id": message.get("id"), "error": exc.to_wire()}
        else:
            frame = {"jsonrpc": "2.0", "id": message.get("id"), "result": result}
        try:
            if "id" in message:
                await conn.ws.send(orjson.dumps(frame).decode())
            later, conn.later = conn.later, []
            for text in later:
                await conn.ws.send(text)
        except Exception:  # the test dropped this connection on purpose
            return

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeDaemon]:
        async with serve(
            self._handle, "127.0.0.1", self.port, process_request=self._process_request
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            yield self


def output_params(eid: str, seq: int, stream: str, data: bytes) -> dict[str, Any]:
    """``process.output`` params as the daemon sends them (base64 when not UTF-8)."""
    params: dict[str, Any] = {"execution_id": eid, "seq": seq, "type": stream, "truncated": False}
    try:
        params["data"] = data.decode()
    except UnicodeDecodeError:
        params["data"] = base64.b64encode(data).decode()
        params["encoding"] = "base64"
    return params


def script(
    eid: str, stdout: list[bytes], exit_code: int = 0, stderr: bytes = b""
) -> list[tuple[str, dict[str, Any]]]:
    """A whole execution's notifications, seq 1..n: started, output pieces, completed."""
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "process.started",
            {"execution_id": eid, "seq": 1, "pid": 100, "pgid": 100, "command": "x"},
        )
    ]
    for piece in stdout:
        events.append(("process.output", output_params(eid, len(events) + 1, "stdout", piece)))
    if stderr:
        events.append(("process.output", output_params(eid, len(events) + 1, "stderr", stderr)))
    events.append(
        (
            "process.completed",
            {
                "execution_id": eid,
                "seq": len(events) + 1,
                "status": "completed" if exit_code == 0 else "failed",
                "exit_code": exit_code,
                "signal": None,
                "execution_time": 0.01,
            },
        )
    )
    return events


def serve_script(
    fake: FakeDaemon, events_for: Callable[[str], list[tuple[str, dict[str, Any]]]]
) -> None:
    """``execute`` replies, then sends the whole script; ``attach`` replays after ``after_seq``."""

    @fake.on("execute")
    async def execute(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        eid = params["execution_id"]
        for method, p in events_for(eid):
            conn.notify_after_response(method, p)
        return {"execution_id": eid, "status": "started", "pid": 100, "pgid": 100}

    @fake.on("attach")
    async def attach(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        eid, after = params["execution_id"], params.get("after_seq", 0)
        events = [(m, p) for m, p in events_for(eid) if p["seq"] > after]
        for method, p in events:
            conn.notify_after_response(method, p)
        return {"execution_id": eid, "replayed": len(events)}


@contextmanager
def fake_in_thread(setup: Callable[[FakeDaemon], None]) -> Iterator[FakeDaemon]:
    """A fake daemon on its own loop in a thread, for blocking (sync/CLI) callers."""
    ready = threading.Event()
    stop: list[Callable[[], object]] = []
    holder: list[FakeDaemon] = []

    async def main() -> None:
        daemon = FakeDaemon()
        setup(daemon)
        finished = asyncio.Event()
        loop = asyncio.get_running_loop()
        stop.append(lambda: loop.call_soon_threadsafe(finished.set))
        async with daemon.running():
            holder.append(daemon)
            ready.set()
            await finished.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(WAIT_S), "fake daemon did not start"
    try:
        yield holder[0]
    finally:
        stop[0]()
        thread.join(WAIT_S)
