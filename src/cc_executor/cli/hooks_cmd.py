"""``cc-executor hooks list|run|reload``: inspect, try and reload hooks.

Parses options, builds ``Settings`` and a local :class:`~cc_executor.scheduler.hooks.HookRunner`
(the same loading code the daemon uses), and renders. ``reload`` reloads locally (showing load
errors) and, since the wire has no reload method, tells the user that a running daemon reloads
on SIGHUP and shows that daemon's ``hook_status``. No hook logic lives here.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError
from rich.table import Table

from cc_executor.cli.console import (
    EXIT_FAILURE,
    EXIT_USAGE,
    build_settings,
    console,
    err_console,
    fail,
)
from cc_executor.config import Settings
from cc_executor.errors import CCExecutorError
from cc_executor.scheduler.hooks import HookContext, HookEvent, HookOutcome, HookRunner

__all__ = ["hooks_app", "sample_context"]

hooks_app = typer.Typer(help="List, try and reload hooks.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
SAMPLE_EXECUTION_ID = "sample-execution"
SAMPLE_LIST_ID = "sample-list"
_SAMPLE_STATES: dict[HookEvent, tuple[str | None, str | None]] = {  # (state, previous_state)
    HookEvent.PRE_EXECUTION: ("pending", None),
    HookEvent.POST_EXECUTION: ("completed", "running"),
    HookEvent.ON_STATE_CHANGE: ("running", "pending"),
    HookEvent.PRE_TASK: ("pending", None),
    HookEvent.POST_TASK: ("completed", "running"),
}
_FINISHED = (HookEvent.POST_EXECUTION, HookEvent.POST_TASK)
_TASK_EVENTS = (HookEvent.PRE_TASK, HookEvent.POST_TASK)


def sample_context(event: HookEvent, cwd: Path) -> dict[str, Any]:
    """A plausible context for ``event`` (a finished ``echo hello``), as a JSON-ready dict."""
    state, previous = _SAMPLE_STATES[event]
    finished = event in _FINISHED
    task = event in _TASK_EVENTS
    return {
        "event": str(event),
        "execution_id": SAMPLE_EXECUTION_ID,
        "command": "echo hello",
        "argv": ["echo", "hello"],
        "cwd": str(cwd),
        "state": state,
        "previous_state": previous,
        "exit_code": 0 if finished else None,
        "execution_time": 0.01 if finished else None,
        "list_id": SAMPLE_LIST_ID if task else None,
        "task_index": 0 if task else None,
        "metadata": {"sample": True},
    }


def _local_runner(settings: Settings, *, force_enabled: bool = False) -> HookRunner:
    if force_enabled:
        settings = settings.model_copy(update={"hooks_enabled": True})
    from cc_executor.server.app import child_base_env

    # The CLI is an edge: hooks run here see this shell's environment, minus the token.
    return HookRunner.from_settings(settings, base_env=child_base_env(os.environ))


def _print_errors(runner: HookRunner) -> None:
    for error in runner.errors:
        err_console.print(f"load error: {error.source}: {error.error}", markup=False)


def _dump(value: object) -> None:
    console.out(orjson.dumps(value, default=str).decode(), highlight=False)


@hooks_app.command("list")
def list_hooks(json_output: JsonOption = False) -> None:
    """Every hook the daemon would load from this configuration, and load errors."""
    runner = _local_runner(build_settings())
    if json_output:
        _dump(runner.status())
        return
    table = Table("name", "kind", "events", "agents", "required", "timeout (s)", "source")
    for column in table.columns:
        column.overflow = "fold"
    for spec in runner.hooks:
        timeout_s = spec.timeout_s if spec.timeout_s is not None else runner.default_timeout_s
        table.add_row(
            spec.name,
            spec.kind,
            ", ".join(spec.events),
            ", ".join(spec.agents) if spec.agents is not None else "all",
            "yes" if spec.required else "no",
            f"{timeout_s:g}",
            spec.source,
        )
    console.print(table)
    state = "enabled" if runner.enabled else "disabled"
    console.print(f"hooks dir: {runner.hooks_dir} ({state})", markup=False)
    _print_errors(runner)


def _context(event: HookEvent, given: str | None) -> HookContext:
    fields = sample_context(event, Path.cwd())
    if given is not None:
        try:
            extra = orjson.loads(given)
        except orjson.JSONDecodeError as exc:
            fail(f"--context is not JSON: {exc}", EXIT_USAGE)
        if not isinstance(extra, dict):
            fail("--context must be a JSON object", EXIT_USAGE)
        fields.update(extra)
    fields["event"] = str(event)
    try:
        return HookContext.model_validate(fields)
    except ValidationError as exc:
        fail(f"invalid --context: {exc}", EXIT_USAGE)


def _render_outcome(outcome: HookOutcome) -> None:
    for run in outcome.runs:
        verdict = "ok" if run.ok else "FAILED"
        console.print(
            f"{run.hook} ({run.event}): {verdict}, proceed={str(run.proceed).lower()}, "
            f"{run.duration_s:.3f}s",
            markup=False,
        )
        if run.message:
            console.print(f"  message: {run.message}", markup=False)
        if run.error:
            console.print(f"  error: {run.error}", markup=False)


@hooks_app.command("run")
def run_hook(
    name: Annotated[str, typer.Argument(help="Hook name, as `hooks list` shows it.")],
    event: Annotated[
        HookEvent | None,
        typer.Option("--event", help="Event to run it for; default its first event."),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option("--context", help="JSON object of context fields over a sample context."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Run one hook here with a sample (or given) context; exit 1 if it fails or blocks."""
    runner = _local_runner(build_settings(), force_enabled=True)
    try:
        spec = runner.get(name)
    except KeyError:
        known = ", ".join(h.name for h in runner.hooks) or "none"
        _print_errors(runner)
        fail(f"no hook named {name!r} (known: {known})", EXIT_USAGE)
    ctx = _context(event if event is not None else spec.events[0], context)
    outcome = asyncio.run(runner.run_hook(name, ctx))
    if json_output:
        _dump(
            {
                "proceed": outcome.proceed,
                "message": outcome.message,
                "warnings": list(outcome.warnings),
                "runs": [asdict(run) for run in outcome.runs],
            }
        )
    else:
        _render_outcome(outcome)
    if not outcome.proceed or not all(run.ok for run in outcome.runs):
        raise typer.Exit(EXIT_FAILURE)


async def _daemon_hook_status(settings: Settings) -> dict[str, Any]:
    from cc_executor.client import WebSocketClient
    from cc_executor.server.daemon import probe_host

    client = WebSocketClient(
        probe_host(settings.host),
        settings.port,
        settings.token.get_secret_value() if settings.token is not None else None,
        token_file=settings.token_file,
        reconnect=False,
    )
    async with client:
        return await client.hook_status()


@hooks_app.command()
def reload(json_output: JsonOption = False) -> None:
    """Reload hooks here (shows load errors) and show a running daemon's hook status.

    A running daemon reloads its hooks when it gets SIGHUP.
    """
    settings = build_settings()
    runner = _local_runner(settings)
    runner.reload()
    from cc_executor.server.daemon import running_pid

    pid = running_pid(settings)
    try:
        remote: dict[str, Any] | None = asyncio.run(_daemon_hook_status(settings))
        remote_error = None
    except CCExecutorError as exc:
        remote, remote_error = None, str(exc)
    if json_output:
        _dump(
            {
                "local": runner.status(),
                "daemon": remote,
                "daemon_pid": pid,
                "daemon_error": remote_error,
            }
        )
        return
    console.print(
        f"reloaded locally: {len(runner.hooks)} hook(s), {len(runner.errors)} load error(s)",
        markup=False,
    )
    _print_errors(runner)
    if remote is None:
        console.print(f"no daemon reachable ({remote_error}); nothing else to reload", markup=False)
        return
    target = str(pid) if pid is not None else "<daemon pid>"
    console.print(
        f"the daemon reloads its hooks on SIGHUP: kill -HUP {target}\n"
        f"daemon hook_status now: {remote.get('message', '')}"
        f" ({len(remote.get('hooks', []))} hook(s))",
        markup=False,
    )
