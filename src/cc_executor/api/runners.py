"""Where a task's Claude process runs: the seam between the task API and the executions.

A :class:`Runner` is an async context manager whose :meth:`Runner.run` starts one fresh Claude
process for a :class:`RunRequest` and yields its :class:`TaskEvent` s in ``seq`` order, ending
with ``process.completed``. Two implementations:

- :class:`EmbeddedRunner`: the daemon's services (store, supervisor, task lists) inside this
  process (no daemon needed), owned by the runner's ``async with``.
- :class:`DaemonRunner`: a daemon over ``/ws/mcp`` (``execute`` with ``agent: "claude"``), one
  connection per ``async with``.

Tests put a fake runner behind this seam (scripted events, no processes).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from cc_executor.agents import ClaudeOptions
from cc_executor.api.events import TaskEvent, event_from_frame, event_from_params
from cc_executor.errors import CCExecutorError
from cc_executor.protocol.names import Notification

if TYPE_CHECKING:
    from cc_executor.client import ExecutionHandle, WebSocketClient
    from cc_executor.config import Settings
    from cc_executor.scheduler.service import ExecutionService
    from cc_executor.server.app import Services

__all__ = [
    "AGENT_NAME",
    "DaemonRunner",
    "EmbeddedRunner",
    "RunRequest",
    "Runner",
    "daemon_url",
    "follow_events",
]

AGENT_NAME = "claude"
WS_PATH = "/ws/mcp"


@dataclass(frozen=True)
class RunRequest:
    """One Claude run: the prompt as sent, its options and limits."""

    prompt: str
    execution_id: str
    options: ClaudeOptions = field(default_factory=ClaudeOptions)
    timeout: float | None = None
    idle_timeout: float | None = None
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, object] = field(default_factory=dict)


class Runner(Protocol):
    """Runs Claude processes; enter it once for any number of runs."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def run(self, request: RunRequest) -> AsyncIterator[TaskEvent]:
        """Start a fresh process and yield its events until (and with) ``process.completed``."""
        ...


class EmbeddedRunner:
    """Runs Claude on the daemon's services inside this process: store, recorder, hooks,
    timeout prediction and run policy (stream-json parsing into ``agent.event``, retries,
    usage-limit waits), under an owner id of its own.

    Every run lands in the durable store ``settings`` name (``cc-executor history``), next to a
    daemon on the same state dir if one runs: recovery only touches what a *dead* owner left.
    Lists are not resumed automatically here (``auto_resume=False``); see
    :func:`cc_executor.api.resume`. Event logs spill to a temporary directory of this runner's
    own (a daemon empties its spool dir at start; ours must never be that one).
    """

    def __init__(self, settings: Settings, *, environ: Mapping[str, str] | None = None) -> None:
        self._settings = settings
        self._environ = dict(os.environ if environ is None else environ)
        self._services: Services | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def services(self) -> Services:
        """The running services (store, supervisor, task lists); only inside ``async with``."""
        if self._services is None:
            raise RuntimeError("EmbeddedRunner used outside its async with")
        return self._services

    async def __aenter__(self) -> Self:
        from cc_executor.server.app import embedded_services

        async with contextlib.AsyncExitStack() as stack:
            services = await stack.enter_async_context(
                embedded_services(self._settings, environ=self._environ)
            )
            self._stack = stack.pop_all()
        self._services = services
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack, self._services = self._stack, None, None
        if stack is not None:
            # Closed as a normal exit: the caller's exception propagates from its own `async
            # with`; handed down, the supervisor's TaskGroup would wrap it in an ExceptionGroup.
            await stack.aclose()

    async def run(self, request: RunRequest) -> AsyncIterator[TaskEvent]:
        from cc_executor.protocol import ExecuteParams

        service = self.services.service
        options = request.options.model_dump(exclude_defaults=True)
        params = ExecuteParams(
            agent=AGENT_NAME,
            prompt=request.prompt,
            agent_options=options or None,
            timeout=request.timeout,
            idle_timeout=request.idle_timeout,
            cwd=request.cwd,
            env=dict(request.env) or None,
            execution_id=request.execution_id,
            metadata=dict(request.metadata) or None,
        )
        execution = await service.execute(params)
        # A run abandoned before its end is stopped when the runner exits (supervisor shutdown).
        async for item in follow_events(service, execution.id):
            yield item


async def follow_events(
    service: ExecutionService, execution_id: str, after_seq: int = 0
) -> AsyncIterator[TaskEvent]:
    """An execution's events past ``after_seq`` as :class:`TaskEvent` s: live until it ends, or
    replayed from the store once it is no longer in memory."""
    from cc_executor.supervisor import Gap

    async for item in service.follow(execution_id, after_seq):
        if isinstance(item, Gap):
            yield TaskEvent(
                execution_id,
                Notification.STREAM_GAP,
                params={"from_seq": item.from_seq, "to_seq": item.to_seq},
            )
        else:
            yield event_from_frame(item.frame)


def daemon_url(server_url: str) -> str:
    """``ws://host:port/ws/mcp`` from a ws(s)/http(s) URL with or without the path."""
    url = server_url.rstrip("/")
    for scheme, ws in (("http://", "ws://"), ("https://", "wss://")):
        if url.startswith(scheme):
            url = ws + url[len(scheme) :]
    if not url.startswith(("ws://", "wss://")):
        url = "ws://" + url
    host_part = url.split("://", 1)[1]
    return url if "/" in host_part else url + WS_PATH


class DaemonRunner:
    """Runs Claude on a cc-executor daemon (``execute`` with ``agent: "claude"``)."""

    def __init__(
        self,
        server_url: str,
        *,
        token: str | None = None,
        token_file: Path | None = None,
    ) -> None:
        from cc_executor.client import WebSocketClient

        self.url = daemon_url(server_url)
        self._client = WebSocketClient(url=self.url, token=token, token_file=token_file)
        self._live: dict[str, ExecutionHandle] = {}

    async def __aenter__(self) -> Self:
        await self._client.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            # Executions belong to the daemon and outlive connections; a task abandoned before
            # its end (stream closed, caller canceled) must not leave Claude running there.
            for handle in list(self._live.values()):
                with contextlib.suppress(CCExecutorError):
                    await handle.cancel()
        finally:
            self._live.clear()
            await self._client.close()

    @property
    def client(self) -> WebSocketClient:
        """The connection (open inside ``async with``); durable task lists use it directly."""
        return self._client

    async def list_executions(self, limit: int) -> list[dict[str, object]]:
        """The daemon's executions, newest first."""
        return [dict(row) for row in await self._client.list_executions(limit=limit)]

    async def run(self, request: RunRequest) -> AsyncIterator[TaskEvent]:
        options = request.options.model_dump(exclude_defaults=True)
        handle = await self._client.execute(
            agent=AGENT_NAME,
            prompt=request.prompt,
            agent_options=options or None,
            timeout=request.timeout,
            idle_timeout=request.idle_timeout,
            cwd=request.cwd,
            env=dict(request.env) or None,
            execution_id=request.execution_id,
            metadata=dict(request.metadata) or None,
            capture=False,
        )
        self._live[handle.execution_id] = handle
        async for event in handle:
            yield event_from_params(event.method, dict(event.params))
        del self._live[handle.execution_id]
