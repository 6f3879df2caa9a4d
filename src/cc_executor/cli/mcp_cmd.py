"""``cc-executor mcp``: the MCP door over stdio, with the service embedded in this process.

Owns: the stdio entry point (settings, log sink on stderr, the state-dir lock) and nothing else:
the tools are :func:`cc_executor.server.mcp.build_mcp_server`'s, the service is built by
:func:`cc_executor.server.app.build_services`, exactly as the daemon builds it.

Stdout is the MCP wire: logs go to stderr only, and while the SDK's ``stdio_server`` serves,
fd 1 points at stderr so nothing else can write to the wire by accident.

The embedded service shares the store with the daemon and every other user of the state dir
(``cc-executor history`` and the ``history`` tool see everything), under an owner id of its own:
recovery only ever touches what a dead owner left, so several stdio servers and a daemon can run
side by side. Its event-log spool is a temporary directory of its own. Executions belong to this
process: when the client closes stdin, they are canceled.
"""

from __future__ import annotations

import asyncio

import typer

from cc_executor.cli.console import EXIT_FAILURE, build_settings
from cc_executor.config import Settings

__all__ = ["mcp", "serve_stdio"]


async def serve_stdio(settings: Settings) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin; then stop every execution."""
    from mcp.server.stdio import stdio_server

    from cc_executor.server.app import embedded_services
    from cc_executor.server.mcp import build_mcp_server

    async with embedded_services(settings) as services:
        door = build_mcp_server(services.service, services.task_lists)
        async with stdio_server() as (read_stream, write_stream):
            await door.server.run(
                read_stream, write_stream, door.server.create_initialization_options()
            )


def mcp() -> None:
    """Serve the MCP tools over stdio (for Claude Desktop and other local MCP clients)."""
    from cc_executor.logging import configure_logging

    settings = build_settings()
    configure_logging(settings.log_level, settings.log_format)  # stderr: stdout is the wire
    try:
        asyncio.run(serve_stdio(settings))
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_FAILURE) from None
