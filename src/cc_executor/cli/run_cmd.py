"""``cc-executor run COMMAND``: run one command on the daemon, streaming its output live.

``cc-executor run --claude PROMPT`` runs a Claude task instead (through the Python task API,
rendered by :mod:`cc_executor.cli.claude_view`): a live view, the answer on stdout. A simple
``claude -p ...`` command line (one the daemon runs with stream-json output, see
:func:`~cc_executor.agents.shell.parse_claude_command`) gets the same view, switched on by the
daemon's ``agent.event``s (:class:`~cc_executor.cli.claude_view.ClaudeCommandView`).

Stdout and stderr are written to this process's stdout and stderr as raw bytes, exactly as the
child wrote them; ``--json`` prints every notification as one JSON line instead. The exit code is
the command's (124 timeout, 130 canceled, 128+N killed by signal N, 1 failed without a code).
Ctrl-C cancels the execution on the daemon and waits, bounded, for its completion; a second
Ctrl-C stops waiting.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated, BinaryIO, Protocol

import orjson
import typer

from cc_executor.agents.shell import parse_claude_command
from cc_executor.cli.console import (
    EXIT_FAILURE,
    build_settings,
    err_console,
    exit_code_for_error,
    fail,
)
from cc_executor.client import (
    Completed,
    Event,
    ExecutionHandle,
    Output,
    ProcessError,
    WebSocketClient,
)
from cc_executor.config import Settings
from cc_executor.errors import CCExecutorError

__all__ = [
    "EXIT_CANCELED",
    "EXIT_TIMEOUT",
    "exit_code_for",
    "run",
]

EXIT_TIMEOUT = 124  # what coreutils `timeout` returns
EXIT_CANCELED = 130  # 128 + SIGINT, what a shell returns after Ctrl-C
CANCEL_CONFIRM_EXTRA_S = 10.0  # beyond the daemon's TERM grace, for the KILL and the sweep


def exit_code_for(completed: Completed) -> int:
    """The shell-style exit code for a finished execution."""
    if completed.status == "timeout":
        return EXIT_TIMEOUT
    if completed.status == "canceled":
        return EXIT_CANCELED
    if completed.exit_code is not None:
        return completed.exit_code if completed.exit_code >= 0 else 128 - completed.exit_code
    if completed.signal is not None:
        return 128 + completed.signal
    return 0 if completed.status == "completed" else EXIT_FAILURE


class Renderer(Protocol):
    def __call__(self, event: Event) -> None: ...

    def finish(self, completed: Completed) -> None: ...


class _Renderer:
    """Writes events to the terminal: raw bytes, or JSON lines."""

    def __init__(self, json_lines: bool, stdout: BinaryIO, stderr: BinaryIO) -> None:
        self._json = json_lines
        self._out = stdout
        self._err = stderr

    def __call__(self, event: Event) -> None:
        if self._json:
            self._out.write(orjson.dumps(event.to_wire()) + b"\n")
            self._out.flush()
            return
        if isinstance(event, Output):
            target = self._err if event.stream == "stderr" else self._out
            target.write(event.data_bytes)
            target.flush()
        elif isinstance(event, ProcessError):
            err_console.print(f"cc-executor: {event.error}", markup=False)

    def finish(self, completed: Completed) -> None:
        pass


def _renderer(command: str | None, json_lines: bool) -> Renderer:
    """The live Claude view for a ``claude -p`` command the daemon runs as stream-json."""
    stdout, stderr = sys.stdout.buffer, sys.stderr.buffer
    if command is not None and not json_lines:
        parsed = parse_claude_command(command)
        if parsed is not None and parsed.stream_json:
            from cc_executor.cli.claude_view import ClaudeCommandView

            return ClaudeCommandView(stdout, stderr)
    return _Renderer(json_lines, stdout, stderr)


async def _stream(handle: ExecutionHandle, render: Renderer) -> Completed:
    async for event in handle:
        render(event)
    completed = await handle.wait()
    render.finish(completed)
    return completed


async def _cancel_on_interrupt(
    handle: ExecutionHandle, interrupted: asyncio.Event, scope: asyncio.Timeout, bound: float
) -> None:
    await interrupted.wait()
    # Bound the wait for the daemon's confirmation before asking, so a hung request is covered.
    scope.reschedule(asyncio.get_running_loop().time() + bound)
    err_console.print(f"cc-executor: canceling {handle.execution_id}", markup=False)
    try:
        await handle.cancel()
    except CCExecutorError as exc:  # e.g. it finished meanwhile (InvalidTransition)
        err_console.print(f"cc-executor: cancel: {exc}", markup=False)


async def _run(
    settings: Settings,
    *,
    command: str | None,
    argv: list[str] | None,
    timeout: float | None,  # noqa: ASYNC109 - the daemon's limit, not a wait bound
    idle_timeout: float | None,
    cwd: Path,
    render: Renderer,
) -> int:
    from cc_executor.server.daemon import probe_host

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    interrupted = asyncio.Event()

    def on_sigint() -> None:
        if interrupted.is_set() and main is not None:
            main.cancel()  # second Ctrl-C: stop waiting for the daemon
        interrupted.set()

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    client = WebSocketClient(
        probe_host(settings.host),
        settings.port,
        settings.token.get_secret_value() if settings.token is not None else None,
        token_file=settings.token_file,
    )
    bound = settings.terminate_grace_s + CANCEL_CONFIRM_EXTRA_S
    try:
        async with client:
            handle = await client.execute(
                command, argv=argv, timeout=timeout, idle_timeout=idle_timeout, cwd=cwd
            )
            async with asyncio.TaskGroup() as tasks:
                async with asyncio.timeout(None) as scope:
                    watcher = tasks.create_task(
                        _cancel_on_interrupt(handle, interrupted, scope, bound)
                    )
                    try:
                        completed = await _stream(handle, render)
                    finally:
                        watcher.cancel()
            return exit_code_for(completed)
    except TimeoutError:
        err_console.print(
            f"cc-executor: the daemon did not confirm the cancel within {bound}s", markup=False
        )
        return EXIT_CANCELED
    except asyncio.CancelledError:
        return EXIT_CANCELED
    except CCExecutorError as exc:
        return exit_code_for_error(exc)
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def run(
    command: Annotated[
        list[str],
        typer.Argument(help="The command: one shell string, or argv words with --no-shell."),
    ],
    *,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Wall-clock limit in seconds (exit 124).")
    ] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option("--idle-timeout", help="Kill after this many seconds without output."),
    ] = None,
    cwd: Annotated[
        Path | None, typer.Option("--cwd", help="Working directory (default: this one).")
    ] = None,
    shell: Annotated[
        bool,
        typer.Option("--shell/--no-shell", help="Run through the daemon's shell, or as argv."),
    ] = True,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print every event as one JSON line.")
    ] = False,
    host: Annotated[str | None, typer.Option("--host", help="Daemon host.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Daemon port.")] = None,
    claude: Annotated[
        bool,
        typer.Option("--claude", help="COMMAND is a prompt: run it as a Claude Code task."),
    ] = False,
    local: Annotated[
        bool,
        typer.Option("--local", help="With --claude: run in this process, no daemon needed."),
    ] = False,
    model: Annotated[
        str | None, typer.Option("--model", help="With --claude: the Claude model.")
    ] = None,
) -> None:
    """Run COMMAND on the daemon, stream its output, exit with its exit code."""
    if not command:
        fail("no command given")
    settings = build_settings(host=host, port=port)
    if claude:
        from cc_executor.cli.claude_view import run_claude

        raise typer.Exit(
            run_claude(
                settings,
                " ".join(command),
                json_lines=json_output,
                local=local,
                timeout=timeout,
                cwd=(cwd or Path.cwd()).resolve(),
                model=model,
            )
        )
    if local or model:
        fail("--local and --model need --claude")
    command_line = " ".join(command) if shell else None
    render = _renderer(command_line, json_output)
    code = asyncio.run(
        _run(
            settings,
            command=command_line,
            argv=None if shell else list(command),
            timeout=timeout,
            idle_timeout=idle_timeout,
            cwd=(cwd or Path.cwd()).resolve(),
            render=render,
        )
    )
    raise typer.Exit(code)
