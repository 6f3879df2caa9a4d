"""The MCP door's HTTP mount, with the MCP SDK imported and the server built on first use.

Owns: the ``/mcp`` route and the manifest route of the daemon's app, and *when* the MCP server
(:func:`cc_executor.server.mcp.build_mcp_server`) and the SDK's session manager come to life.
Does not own: the tools, the catalogue or the manifest's content (``mcp.py``), or who may connect
(``security.py``; the guard runs before anything here, so a refused request never builds or
imports anything).

Why lazily: importing the MCP SDK (``mcp``, ``mcp_types``) costs ~23 MB of daemon RSS and ~0.5 s
of start-up (measured in ``docs/benchmarks.md``, round 6), while most daemons are only ever
spoken to over ``/ws/mcp``. So the SDK is imported, the server built and the session manager
started by the first request to ``/mcp`` (or the manifest, which only needs the catalogue).

The session manager's ``run()`` opens an anyio task group, which must be entered and exited by
the same task. A request task ends with its request, so the manager runs in a task of its own,
started by the first request and stopped by the app's lifespan (see :meth:`LazyMcp.running`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from loguru import logger
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cc_executor.server.security import RequestGuard

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from cc_executor.scheduler.service import ExecutionService
    from cc_executor.server.mcp import McpDoor, TaskListsApi

__all__ = ["MANIFEST_PATH", "MCP_PATH", "LazyMcp", "mount_mcp_lazy"]

MCP_PATH = "/mcp"
MANIFEST_PATH = "/.well-known/mcp/cc-executor.json"
UNAVAILABLE = 503  # a request outside the app's lifespan (shutting down): the door is closed


class LazyMcp:
    """Builds the MCP door on first use and runs its session manager until the lifespan ends."""

    def __init__(self, service: ExecutionService, task_lists: TaskListsApi | None) -> None:
        self._service = service
        self._task_lists = task_lists
        self._door: McpDoor | None = None
        self._asgi: ASGIApp | None = None  # the SDK's ASGI app, set once its manager runs
        self._ready: asyncio.Future[ASGIApp] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._open = False  # inside the app's lifespan
        self.started = False  # the SDK's session manager was started (tests read it)

    def door(self) -> McpDoor:
        """The built server and catalogue (imports the SDK the first time)."""
        if self._door is None:
            from cc_executor.server.mcp import build_mcp_server

            self._door = build_mcp_server(self._service, self._task_lists)
        return self._door

    async def _app(self) -> ASGIApp | None:
        """The running SDK app, starting it on the first call; None outside the lifespan."""
        if self._asgi is not None:
            return self._asgi
        if not self._open:
            return None
        if self._ready is None:
            from mcp.server.streamable_http_manager import (
                StreamableHTTPASGIApp,
                StreamableHTTPSessionManager,
            )

            # Stateless: every request gets a fresh transport. Our tools keep no per-session
            # state (executions belong to the daemon, not to a connection), so nothing is lost,
            # and there is no session table to grow or to reap. Progress still reaches the
            # client: it travels on the SSE stream of the request that asked for it.
            sessions = StreamableHTTPSessionManager(app=self.door().server, stateless=True)
            loop = asyncio.get_running_loop()
            self._ready = loop.create_future()
            self._runner = loop.create_task(
                self._serve(sessions, StreamableHTTPASGIApp(sessions), self._ready),
                name="mcp-session-manager",
            )
        # Shielded: a client that gives up must not cancel the start for the requests after it.
        return await asyncio.shield(self._ready)

    async def _serve(
        self,
        sessions: StreamableHTTPSessionManager,
        asgi: ASGIApp,
        ready: asyncio.Future[ASGIApp],
    ) -> None:
        try:
            async with sessions.run():
                self.started = True
                self._asgi = asgi
                logger.info("MCP endpoint ready at {} (started by its first request)", MCP_PATH)
                ready.set_result(asgi)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                failure = exc if isinstance(exc, Exception) else RuntimeError("MCP door stopped")
                ready.set_exception(failure)
            raise
        finally:
            self._asgi = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = await self._app()
        if app is None:
            response = JSONResponse({"error": "the MCP door is closed"}, status_code=UNAVAILABLE)
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The app's lifespan part: requests may start the door inside it; it stops on exit."""
        self._open = True
        try:
            yield
        finally:
            self._open = False
            self._stop.set()
            if self._runner is not None:
                try:
                    await self._runner
                except Exception:  # a failed start was reported to its requests already
                    logger.exception("MCP session manager failed")


def mount_mcp_lazy(
    app: FastAPI,
    service: ExecutionService,
    task_lists: TaskListsApi | None,
    *,
    token: str | None,
    hosts: frozenset[str],
    origins: frozenset[str],
) -> AbstractAsyncContextManager[None]:
    """Serve the MCP door at :data:`MCP_PATH` and the manifest; return the lifespan to enter.

    Enter the returned context manager inside the app's lifespan, after the service has started
    and before it stops: it runs the SDK's session manager once the first request built it.
    """
    lazy = LazyMcp(service, task_lists)
    app.state.mcp = lazy
    guarded = RequestGuard(lazy, token=token, hosts=hosts, origins=origins)
    # A Route, not a Mount: a Mount at /mcp would answer /mcp itself with a redirect to /mcp/.
    app.router.routes.append(
        Route(MCP_PATH, guarded, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )

    async def well_known(request: Request) -> JSONResponse:
        # No token needed: it lists what the source code does (names, schemas, URLs), nothing
        # secret, and a client reads it before it has a token. The Host check still applies.
        from cc_executor.server.mcp import manifest

        body: dict[str, Any] = manifest(lazy.door(), base_url=str(request.base_url))
        return JSONResponse(body)

    app.add_route(MANIFEST_PATH, well_known, methods=["GET"], include_in_schema=False)
    return lazy.running()
