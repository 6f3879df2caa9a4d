"""A real daemon (uvicorn + the real app) on a loopback port, and a raw JSON-RPC WebSocket peer.

The daemon runs in a thread with its own event loop, so tests talk to it over real sockets and
its executions are real process groups. Waits are bounded; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from cc_executor.config import Settings
from cc_executor.server.app import create_app, resolve_token

STARTUP_TIMEOUT_S = 15.0
EVENT_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@dataclass
class Daemon:
    settings: Settings
    token: str
    server: _Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.settings.port}/ws/mcp"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @asynccontextmanager
    async def session(self, **kw: Any) -> AsyncIterator[Peer]:
        headers = kw.pop("headers", {"Authorization": f"Bearer {self.token}"})
        async with connect(
            self.url, additional_headers=headers, max_size=None, compression=None, **kw
        ) as ws:
            peer = Peer(ws)
            hello = await peer.next_frame()
            assert hello["method"] == "connected"
            peer.hello = hello["params"]
            yield peer


@contextmanager
def run_daemon(tmp_path: Path, **overrides: Any) -> Iterator[Daemon]:
    settings = Settings(
        host="127.0.0.1",
        port=overrides.pop("port", None) or free_port(),
        state_dir=tmp_path / "state",
        terminate_grace_s=overrides.pop("terminate_grace_s", 2.0),
        **overrides,
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        lifespan="on",
        ws_max_size=settings.ws_hard_max_frame_bytes,
        ws_per_message_deflate=False,
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, name="daemon", daemon=True)
    thread.start()
    assert server.ready.wait(STARTUP_TIMEOUT_S), "daemon did not start"
    token = resolve_token(settings)
    assert token is not None
    try:
        yield Daemon(settings, token, server, thread)
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT_S)
        assert not thread.is_alive(), "daemon did not stop"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with run_daemon(tmp_path) as d:
        yield d


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Callable[..., Any]:
    return lambda **kw: run_daemon(tmp_path, **kw)


@dataclass
class Run:
    """Everything one execution sent, in arrival order."""

    execution_id: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def output(self, stream: str = "stdout") -> bytes:
        import base64

        parts = []
        for e in self.events:
            p = e["params"]
            if e["method"] == "process.output" and p["type"] == stream:
                if p.get("encoding") == "base64":
                    parts.append(base64.b64decode(p["data"]))
                else:
                    parts.append(p["data"].encode())
        return b"".join(parts)

    @property
    def completed(self) -> dict[str, Any]:
        last = self.events[-1]
        assert last["method"] == "process.completed", last
        params: dict[str, Any] = last["params"]
        return params

    @property
    def seqs(self) -> list[int]:
        return [e["params"]["seq"] for e in self.events if "seq" in e["params"]]


class Peer:
    """A raw JSON-RPC client: requests by id, notifications buffered until asked for."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.hello: dict[str, Any] = {}
        self._next_id = 0
        self.pending: list[dict[str, Any]] = []

    async def next_frame(self, timeout: float = EVENT_TIMEOUT_S) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            raw = await self.ws.recv()
        frame: dict[str, Any] = orjson.loads(raw)
        return frame

    async def send_raw(self, raw: str | bytes) -> None:
        await self.ws.send(raw)

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request; return its response frame (result or error), buffering notifications."""
        self._next_id += 1
        rid = self._next_id
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        await self.ws.send(orjson.dumps(msg).decode())
        return await self.response(rid)

    async def response(self, rid: int | str | None) -> dict[str, Any]:
        while True:
            frame = await self.next_frame()
            if "method" in frame:
                self.pending.append(frame)
                continue
            assert frame.get("id") == rid, frame
            return frame

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        frame = await self.request(method, params)
        assert "result" in frame, frame
        result: dict[str, Any] = frame["result"]
        return result

    async def next_event(
        self, execution_id: str, timeout: float = EVENT_TIMEOUT_S
    ) -> dict[str, Any]:
        for i, frame in enumerate(self.pending):
            if frame["params"].get("execution_id") == execution_id:
                return self.pending.pop(i)
        while True:
            frame = await self.next_frame(timeout)
            assert "method" in frame, frame
            if frame["params"].get("execution_id") == execution_id:
                return frame
            self.pending.append(frame)

    async def wait_for(
        self, execution_id: str, method: str, run: Run | None = None
    ) -> dict[str, Any]:
        while True:
            event = await self.next_event(execution_id)
            if run is not None:
                run.events.append(event)
            if event["method"] == method:
                return event

    async def run(self, params: dict[str, Any]) -> Run:
        started = await self.call("execute", params)
        run = Run(started["execution_id"])
        await self.wait_for(run.execution_id, "process.completed", run)
        return run
