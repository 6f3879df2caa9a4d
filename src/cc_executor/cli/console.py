"""What every command shares: the two consoles, settings from options, and exit codes."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from cc_executor.client import DaemonUnreachable, HandshakeRefused
from cc_executor.config import Settings
from cc_executor.errors import CCExecutorError

__all__ = [
    "EXIT_DAEMON_UNREACHABLE",
    "EXIT_FAILURE",
    "EXIT_NOT_RUNNING",
    "EXIT_PERMISSION",
    "EXIT_USAGE",
    "build_settings",
    "console",
    "err_console",
    "exit_code_for_error",
    "fail",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3  # `server status` when no daemon runs (the LSB init-script convention)
EXIT_DAEMON_UNREACHABLE = 69  # sysexits EX_UNAVAILABLE: distinct from any command's own codes
EXIT_PERMISSION = 77  # sysexits EX_NOPERM: the daemon refused the token

# file=None: rich resolves sys.stdout / sys.stderr at print time (test runners swap them).
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    err_console.print(Text.assemble(("error: ", "bold red"), message))
    raise typer.Exit(code)


def build_settings(**overrides: Any) -> Settings:
    """``Settings`` from the environment and ``.env``, with the options that were given."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        fail(f"invalid settings: {exc}", EXIT_USAGE)


def exit_code_for_error(exc: CCExecutorError, *, unreachable_hint: str = "") -> int:
    """Report a client-side error on stderr; the exit code that says what went wrong."""
    if isinstance(exc, DaemonUnreachable):
        err_console.print(f"cc-executor: {exc}{unreachable_hint}", markup=False)
        return EXIT_DAEMON_UNREACHABLE
    if isinstance(exc, HandshakeRefused):
        err_console.print(f"cc-executor: {exc}", markup=False)
        return EXIT_PERMISSION
    err_console.print(f"cc-executor: {type(exc).__name__}: {exc}", markup=False)
    return EXIT_FAILURE
