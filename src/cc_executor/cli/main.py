"""The ``cc-executor`` typer app: wires the command groups together (console script entry)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from loguru import logger

from cc_executor import __version__
from cc_executor.cli.assess_cmd import test_app
from cc_executor.cli.config_cmd import config_app
from cc_executor.cli.console import console
from cc_executor.cli.history_cmd import history_app
from cc_executor.cli.hooks_cmd import hooks_app
from cc_executor.cli.init_cmd import init
from cc_executor.cli.mcp_cmd import mcp
from cc_executor.cli.run_cmd import run
from cc_executor.cli.server_cmd import server_app

__all__ = ["CLI_LOG_LEVEL", "app"]

CLI_LOG_LEVEL = "WARNING"  # what a CLI command shows of the library's own log

app = typer.Typer(
    name="cc-executor",
    help="Run Claude Code and plain commands as supervised, observable, stoppable jobs.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(server_app, name="server")
app.add_typer(config_app, name="config")
app.add_typer(history_app, name="history")
app.add_typer(hooks_app, name="hooks")
app.add_typer(test_app, name="test")
app.command("init")(init)
app.command("mcp")(mcp)
app.command(
    "run",
    context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
)(run)


def _version(value: bool) -> None:
    if value:
        console.out(f"cc-executor {__version__}", highlight=False)
        raise typer.Exit


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """cc-executor: a daemon that runs commands and Claude Code for AI orchestrators."""
    # A command's own output is what the user asked for: library INFO lines (a store migrated,
    # hooks loaded) stay out of it. The daemon and `mcp` install their own sinks when they start.
    logger.remove()
    logger.add(sys.stderr, level=CLI_LOG_LEVEL, format="{level}: {message}")
