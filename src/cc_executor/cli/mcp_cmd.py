"""``cc-executor mcp``: the MCP door over stdio, with the service embedded in this process.

Owns: the stdio entry point (settings, log sink on stderr, the state-dir lock) and nothing else:
the tools are :func:`cc_executor.server.mcp.build_mcp_server`'s, the service is built by
:func:`cc_executor.server.app.build_services`, exactly as the daemon builds it.

Stdout is the MCP wire: logs go to stderr only, and while the SDK's ``stdio_server`` serves,
fd 1 points at stderr so nothing else can write to the wire by accident.

The embedded service keeps its history in ``<state_dir>/mcp-stdio``, not in the daemon's files:
at start a service marks whatever its store says was running as lost and kills what is left of
it, which must never hit a daemon's (or another stdio server's) live executions. A lock file
makes a second ``cc-executor mcp`` on the same state dir fail with a clear message instead.
Executions belong to this process: when the client closes stdin, they are canceled.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import typer

from cc_executor.cli.console import EXIT_FAILURE, build_settings, err_console
from cc_executor.config import Settings

__all__ = ["STDIO_STATE_SUBDIR", "mcp", "serve_stdio", "stdio_settings"]

STDIO_STATE_SUBDIR = "mcp-stdio"
LOCK_FILE_NAME = "mcp-stdio.lock"
_STATE_DIR_MODE = 0o700  # history holds commands, prompts and output: owner only
_LOCK_FILE_MODE = 0o600


class StateDirBusy(RuntimeError):
    """Another ``cc-executor mcp`` holds the state dir's lock."""


def stdio_settings(settings: Settings) -> Settings:
    """The settings of the embedded service: its own state dir under the configured one."""
    return settings.model_copy(update={"state_dir": settings.state_dir / STDIO_STATE_SUBDIR})


@contextlib.contextmanager
def _state_dir_lock(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True, mode=_STATE_DIR_MODE)
    fd = os.open(state_dir / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, _LOCK_FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateDirBusy(
                f"another `cc-executor mcp` is serving from {state_dir}; set "
                "CC_EXECUTOR_STATE_DIR to run a second one"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


async def serve_stdio(settings: Settings) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin; then stop every execution."""
    from mcp.server.stdio import stdio_server

    from cc_executor.server.app import build_services
    from cc_executor.server.mcp import build_mcp_server

    services = build_services(settings)
    async with services.running():
        door = build_mcp_server(services.service, services.task_lists)
        async with stdio_server() as (read_stream, write_stream):
            await door.server.run(
                read_stream, write_stream, door.server.create_initialization_options()
            )


def mcp() -> None:
    """Serve the MCP tools over stdio (for Claude Desktop and other local MCP clients)."""
    from cc_executor.logging import configure_logging

    settings = stdio_settings(build_settings())
    configure_logging(settings.log_level, settings.log_format)  # stderr: stdout is the wire
    try:
        with _state_dir_lock(settings.state_dir):
            asyncio.run(serve_stdio(settings))
    except StateDirBusy as exc:
        err_console.print(f"cc-executor: {exc}", markup=False)
        raise typer.Exit(EXIT_FAILURE) from None
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_FAILURE) from None
