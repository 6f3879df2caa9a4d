"""``cc-executor test stress``: N executions, P at a time, then a latency/throughput summary.

Parses options and renders (a rich progress bar, then a table, or ``--json``); the load test
itself is :func:`cc_executor.client.stress.run_stress`. Exit 1 when any task failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cc_executor.cli.console import EXIT_FAILURE, build_settings, console, exit_code_for_error
from cc_executor.client.client import WebSocketClient
from cc_executor.client.stress import (
    DEFAULT_STRESS_COMMAND,
    STRESS_TASK_TIMEOUT_S,
    StressReport,
    TaskSample,
    run_stress,
)
from cc_executor.errors import CCExecutorError

__all__ = ["stress", "summary_table"]

MS_PER_S = 1000.0
SHOWN_ERRORS = 5  # failed tasks listed under the table; the JSON output has all of them


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * MS_PER_S:.1f} ms"


def summary_table(report: StressReport) -> Table:
    """The human summary of a stress run."""
    table = Table("metric", "value", title=f"stress: {report.command!r}")
    table.add_row("tasks ok / failed", f"{report.ok} / {report.failed}")
    table.add_row("parallel", str(report.parallel))
    table.add_row("wall time", f"{report.wall_s:.2f} s")
    table.add_row("throughput", f"{report.tasks_per_s:.1f} tasks/s")
    table.add_row("output", f"{report.bytes_per_s:,.0f} bytes/s")
    for label, which in (("first byte", "first_byte"), ("completion", "total")):
        for name, value in report.latencies(which).items():
            table.add_row(f"{label} {name}", _ms(value))
    return table


async def _run_with_progress(
    client: Callable[[], WebSocketClient],
    *,
    tasks: int,
    parallel: int,
    command: str,
    task_timeout: float,
    show: bool,
) -> StressReport:
    if not show:
        return await run_stress(
            client, tasks=tasks, parallel=parallel, command=command, task_timeout=task_timeout
        )
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("tasks", total=tasks, failed=0)
        failed = 0

        def on_sample(sample: TaskSample) -> None:
            nonlocal failed
            failed += not sample.ok
            progress.update(bar, advance=1, failed=failed)

        return await run_stress(
            client,
            tasks=tasks,
            parallel=parallel,
            command=command,
            task_timeout=task_timeout,
            on_sample=on_sample,
        )


def stress(
    *,
    tasks: Annotated[int, typer.Option("--tasks", "-n", min=1, help="How many executions.")] = 10,
    parallel: Annotated[
        int, typer.Option("--parallel", "-p", min=1, help="How many run at once.")
    ] = 2,
    command: Annotated[
        str, typer.Option("--command", "-c", help="The shell command every task runs.")
    ] = DEFAULT_STRESS_COMMAND,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, help="Per-task limit on the daemon, seconds.")
    ] = STRESS_TASK_TIMEOUT_S,
    host: Annotated[str | None, typer.Option("--host", help="The daemon's host.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="The daemon's port.")] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object.")
    ] = False,
) -> None:
    """Load-test a running daemon: latency to first byte and to completion, throughput."""
    from cc_executor.cli.assess_cmd import target_for

    target = target_for(build_settings(host=host, port=port))
    try:
        report = asyncio.run(
            _run_with_progress(
                target.client,
                tasks=tasks,
                parallel=parallel,
                command=command,
                task_timeout=timeout,
                show=not json_output,
            )
        )
    except CCExecutorError as exc:
        raise typer.Exit(
            exit_code_for_error(
                exc, unreachable_hint=" (is it running? `cc-executor server start`)"
            )
        ) from None
    if json_output:
        console.out(orjson.dumps(report.to_dict()).decode(), highlight=False)
    else:
        console.print(summary_table(report))
        for sample in [s for s in report.samples if not s.ok][:SHOWN_ERRORS]:
            console.print(f"task {sample.index}: {sample.error}", markup=False)
    if report.failed:
        raise typer.Exit(EXIT_FAILURE)
