"""Where a task's Claude process runs: the seam between the task API and the executions.

A :class:`Runner` is an async context manager whose :meth:`Runner.run` starts one fresh Claude
process for a :class:`RunRequest` and yields its :class:`TaskEvent` s in ``seq`` order, ending
with ``process.completed``. Two implementations:

- :class:`EmbeddedRunner`: an in-process :class:`~cc_executor.supervisor.Supervisor` (no daemon
  needed), owned by the runner's ``async with``.
- :class:`DaemonRunner`: a daemon over ``/ws/mcp`` (``execute`` with ``agent: "claude"``), one
  connection per ``async with``.

Tests put a fake runner behind this seam (scripted events, no processes).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from cc_executor.agents import ClaudeOptions
from cc_executor.api.events import TaskEvent, event_from_frame, event_from_params
from cc_executor.errors import CCExecutorError
from cc_executor.protocol.names import Notification
from cc_executor.supervisor.process import TERMINATE_GRACE_S

if TYPE_CHECKING:
    from cc_executor.client import ExecutionHandle
    from cc_executor.scheduler import ClaudeRunConfig

__all__ = [
    "AGENT_NAME",
    "DaemonRunner",
    "EmbeddedRunner",
    "RunRequest",
    "Runner",
    "daemon_url",
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
    """Runs Claude on a supervisor inside this process (the daemon's run policy included:
    stream-json parsing into ``agent.event``, retries, usage-limit waits)."""

    def __init__(
        self,
        *,
        shell: str,
        claude: ClaudeRunConfig,
        terminate_grace_s: float = TERMINATE_GRACE_S,
        base_env: Mapping[str, str] | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        from cc_executor.supervisor import Supervisor

        self._claude = claude
        self._supervisor = Supervisor(
            shell=shell,
            terminate_grace_s=terminate_grace_s,
            base_env=base_env,
            spool_dir=spool_dir,
        )

    async def __aenter__(self) -> Self:
        await self._supervisor.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._supervisor.__aexit__(exc_type, exc, tb)

    async def run(self, request: RunRequest) -> AsyncIterator[TaskEvent]:
        from cc_executor.scheduler import claude_spec
        from cc_executor.supervisor import Gap

        spec = claude_spec(
            request.prompt,
            request.options,
            self._claude,
            cwd=request.cwd,
            env=request.env,
            timeout=request.timeout,
            idle_timeout=request.idle_timeout,
            execution_id=request.execution_id,
            metadata=request.metadata,
        )
        execution = await self._supervisor.execute(spec)
        # A run abandoned before its end is stopped when the runner exits (supervisor shutdown).
        async for item in execution.log.follow(0):
            if isinstance(item, Gap):
                yield TaskEvent(
                    execution.id,
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
