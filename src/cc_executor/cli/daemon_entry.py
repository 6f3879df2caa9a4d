"""``cc-executor server start [--foreground]`` without the CLI stack.

The daemon is always started as ``server start --foreground`` (``server start`` in the
background runs exactly this argv), and at idle it needs none of typer, click, rich or the
client the other commands import: about 4 MB of the idle RSS. A background ``server start``
skips them too: importing the whole CLI cost half a second of a restart. :func:`run_foreground`
and :func:`run_background` each handle their one argv shape (plus ``--host`` / ``--port``);
anything else returns ``None`` and the typer app handles it as before (including ``--help`` and
every error message about options). :func:`main` is the console script.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cc_executor.config import Settings

__all__ = ["main", "run_background", "run_foreground"]

_OPTIONS = ("--host", "--port")


def _parse(args: Sequence[str], *, foreground: bool = True) -> dict[str, str] | None:
    if list(args[:2]) != ["server", "start"]:
        return None
    rest = list(args[2:])
    if ("--foreground" in rest) != foreground:
        return None
    if foreground:
        rest.remove("--foreground")
    options: dict[str, str] = {}
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=")
        if name not in _OPTIONS or name[2:] in options:
            return None
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        options[name[2:]] = value
    return options


def _settings(args: Sequence[str], *, foreground: bool) -> Settings | None:
    """The settings for this argv shape, or ``None`` (another shape, or values typer should
    reject with its own usage error)."""
    options = _parse(args, foreground=foreground)
    if options is None:
        return None
    from pydantic import ValidationError

    from cc_executor.config import Settings

    try:
        return Settings(**options)  # type: ignore[arg-type]
    except ValidationError:
        return None


def run_foreground(args: Sequence[str]) -> int | None:
    """Serve in the foreground for ``server start --foreground``; ``None`` for any other argv."""
    settings = _settings(args, foreground=True)
    if settings is None:
        return None
    from cc_executor.server import daemon

    try:
        return daemon.run(settings)
    except daemon.DaemonError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1


def run_background(args: Sequence[str]) -> int | None:
    """Start the daemon in the background for ``server start``; ``None`` for any other argv."""
    settings = _settings(args, foreground=False)
    if settings is None:
        return None
    from cc_executor.server import daemon

    try:
        pid = daemon.start_background(settings)
    except daemon.DaemonError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    for line in daemon.started_lines(settings, pid):
        sys.stdout.write(line + "\n")
    return 0


def main() -> None:
    """The ``cc-executor`` console script: the two light paths first, then the typer app."""
    args = sys.argv[1:]
    code = run_foreground(args)
    if code is None:
        code = run_background(args)
    if code is not None:
        sys.exit(code)
    from cc_executor.cli.main import app

    app(prog_name="cc-executor")
