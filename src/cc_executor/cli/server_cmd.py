"""``cc-executor server start|stop|status|restart|token``: the daemon's lifecycle."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.table import Table

from cc_executor.cli.console import (
    EXIT_FAILURE,
    EXIT_NOT_RUNNING,
    build_settings,
    console,
    fail,
)
from cc_executor.config import Settings
from cc_executor.server import daemon

__all__ = ["server_app"]

server_app = typer.Typer(
    help="Start, stop and inspect the cc-executor daemon.", no_args_is_help=True
)

HostOption = Annotated[
    str | None, typer.Option("--host", help="Interface to bind / connect to (CC_EXECUTOR_HOST).")
]
PortOption = Annotated[int | None, typer.Option("--port", help="TCP port (CC_EXECUTOR_PORT).")]


def _start_background(settings: Settings) -> None:
    try:
        pid = daemon.start_background(settings)
    except daemon.DaemonError as exc:
        fail(str(exc))
    for line in daemon.started_lines(settings, pid):
        console.print(line, markup=False, highlight=False)


@server_app.command()
def start(
    host: HostOption = None,
    port: PortOption = None,
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Serve in this process until Ctrl-C / SIGTERM.")
    ] = False,
) -> None:
    """Start the daemon (in the background unless --foreground)."""
    settings = build_settings(host=host, port=port)
    if not foreground:
        _start_background(settings)
        return
    try:
        code = daemon.run(settings)
    except daemon.DaemonError as exc:
        fail(str(exc))
    raise typer.Exit(code)


@server_app.command()
def stop(host: HostOption = None, port: PortOption = None) -> None:
    """Stop the daemon (SIGTERM, bounded wait, then SIGKILL)."""
    settings = build_settings(host=host, port=port)
    pid = daemon.stop(settings)
    if pid is None:
        console.print(f"no cc-executor daemon running on {settings.host}:{settings.port}")
    else:
        console.print(f"cc-executor daemon stopped (pid {pid})")


@server_app.command()
def restart(host: HostOption = None, port: PortOption = None) -> None:
    """Stop the daemon if it runs, then start it in the background."""
    settings = build_settings(host=host, port=port)
    pid = daemon.stop(settings)
    if pid is not None:
        console.print(f"cc-executor daemon stopped (pid {pid})")
    _start_background(settings)


@server_app.command()
def status(
    host: HostOption = None,
    port: PortOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Whether the daemon runs, its pid, URL and version (exit 3 when it does not run)."""
    settings = build_settings(host=host, port=port)
    info = daemon.status(settings)
    if json_output:
        console.out(orjson.dumps(info).decode(), highlight=False)
    else:
        table = Table(show_header=False, box=None)
        for key, value in info.items():
            table.add_row(key, "-" if value is None else str(value))
        console.print(table)
    if not info["running"]:
        raise typer.Exit(EXIT_NOT_RUNNING)


@server_app.command()
def token(host: HostOption = None, port: PortOption = None) -> None:
    """Print the daemon's bearer token (created on first use, in a 0600 file)."""
    settings = build_settings(host=host, port=port)
    if settings.token is not None:
        console.out(settings.token.get_secret_value(), highlight=False)
        return
    from cc_executor.tokens import load_or_create_token

    try:
        value = load_or_create_token(settings.token_file)
    except OSError as exc:
        fail(f"cannot read or create {settings.token_file}: {exc}", EXIT_FAILURE)
    console.out(value, highlight=False)
