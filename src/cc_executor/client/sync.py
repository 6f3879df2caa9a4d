"""``SyncWebSocketClient``: blocking calls for scripts that do not run an event loop.

Each call runs one :class:`WebSocketClient` session in its own ``asyncio.run``: connect, do the
call, close. Simple and correct (no background thread, no shared loop) at the price of one
handshake per call, which on loopback costs about a millisecond. Calling it from inside a running
event loop raises ``RuntimeError``; use :class:`WebSocketClient` there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from cc_executor.client.client import WebSocketClient
from cc_executor.client.events import Event
from cc_executor.client.handle import CommandResult
from cc_executor.config import DEFAULT_PORT

__all__ = ["SyncWebSocketClient"]

T = TypeVar("T")


class SyncWebSocketClient:
    """Blocking twin of :class:`WebSocketClient` for the common calls."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
        *,
        url: str | None = None,
        token_file: Path | str | None = None,
        **client_options: Any,
    ) -> None:
        self._factory: Callable[[], WebSocketClient] = lambda: WebSocketClient(
            host, port, token, url=url, token_file=token_file, **client_options
        )

    def _run(self, call: Callable[[WebSocketClient], Awaitable[T]]) -> T:
        async def session() -> T:
            async with self._factory() as client:
                return await call(client)

        return asyncio.run(session())

    def execute_command(
        self, command: str, timeout: float | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Same contract as :meth:`WebSocketClient.execute_command` (never raises for failures)."""

        async def call() -> dict[str, Any]:
            return await self._factory().execute_command(command, timeout, **kwargs)

        return asyncio.run(call())

    def run(
        self,
        command: str | None = None,
        *,
        on_event: Callable[[Event], None] | None = None,
        **kwargs: Any,
    ) -> CommandResult:
        """Execute and wait; ``on_event`` sees every event as it arrives (in this thread)."""

        async def call(client: WebSocketClient) -> CommandResult:
            handle = await client.execute(command, **kwargs)
            async for event in handle:
                if on_event is not None:
                    on_event(event)
            return await handle.result()

        return self._run(call)

    def status(self, execution_id: str) -> dict[str, Any]:
        return self._run(lambda client: client.status(execution_id))

    def list_executions(
        self, state: str | list[str] | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        return self._run(lambda client: client.list_executions(state, limit))

    def hook_status(self) -> dict[str, Any]:
        return self._run(lambda client: client.hook_status())

    def task_list_status(self, list_id: str) -> dict[str, Any]:
        """Same as :meth:`WebSocketClient.task_list_status`."""
        return self._run(lambda client: client.task_list_status(list_id))

    def task_list_pause(self, list_id: str, *, pause_running: bool = False) -> dict[str, Any]:
        """Same as :meth:`WebSocketClient.task_list_pause`."""
        return self._run(
            lambda client: client.task_list_pause(list_id, pause_running=pause_running)
        )

    def task_list_resume(self, list_id: str) -> dict[str, Any]:
        """Same as :meth:`WebSocketClient.task_list_resume`."""
        return self._run(lambda client: client.task_list_resume(list_id))

    def task_list_cancel(self, list_id: str) -> dict[str, Any]:
        """Same as :meth:`WebSocketClient.task_list_cancel`."""
        return self._run(lambda client: client.task_list_cancel(list_id))
