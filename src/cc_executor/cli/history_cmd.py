"""``cc-executor history list|show|export|metrics|prune``: the durable store, read from the CLI.

Opens the store ``Settings`` names (``open_store``) directly, so every command works whether or
not a daemon runs (SQLite in WAL mode allows a second process; Redis is shared). Parsing and
rendering only: formats, filters, output rebuilding and metrics are
:mod:`cc_executor.storage.export` (the Python API's ``export_execution_history`` uses the same).
Exit codes: 0 ok, 1 not found / store unavailable / prune declined, 2 bad options.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.table import Table

from cc_executor.cli.console import EXIT_FAILURE, EXIT_USAGE, build_settings, console, fail
from cc_executor.config import Settings
from cc_executor.errors import InvalidParams, ServiceError
from cc_executor.storage import ExecutionRecord, Store, open_store
from cc_executor.storage.export import (
    METRICS_WINDOW,
    ExportFormat,
    collect_executions,
    compute_metrics,
    export_executions,
    parse_since,
    read_all_events,
    rebuild_output,
)

__all__ = ["COMMAND_SHOWN_CHARS", "LIST_DEFAULT_LIMIT", "history_app"]

history_app = typer.Typer(
    help="Past executions from the durable store: list, show, export, metrics, prune.",
    no_args_is_help=True,
)

LIST_DEFAULT_LIMIT = 20  # a screenful; --limit for more
COMMAND_SHOWN_CHARS = 60  # the table's command column; `show` prints it whole
SECONDS_PER_DAY = 86400.0

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
StatusOption = Annotated[
    list[str] | None,
    typer.Option("--status", help="Only executions in this state (repeatable)."),
]
SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since", help="Created at or after: ISO date/time, epoch seconds, or 7d/12h/30m."
    ),
]


def _run(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store, run ``work`` on it, close it; store failures exit 1, bad input exits 2."""

    async def main() -> T:
        store = open_store(settings)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except InvalidParams as exc:
        fail(exc.message, EXIT_USAGE)
    except ServiceError as exc:
        fail(f"store unavailable: {exc.message}", EXIT_FAILURE)


def _since(value: str | None) -> float | None:
    try:
        return parse_since(value)
    except InvalidParams as exc:
        fail(exc.message, EXIT_USAGE)


def _print_json(value: object) -> None:
    console.out(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode(), highlight=False)


def _when(epoch: float | None) -> str:
    return "-" if not epoch else datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@history_app.command("list")
def list_(
    status: StatusOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = (
        LIST_DEFAULT_LIMIT
    ),
    since: SinceOption = None,
    json_output: JsonOption = False,
) -> None:
    """The newest executions."""
    settings = build_settings()
    started = _since(since)
    records = _run(
        settings,
        lambda store: collect_executions(store, status=status, since=started, limit=limit),
    )
    if json_output:
        _print_json([dataclasses.asdict(r) for r in records])
        return
    table = Table("id", "state", "class", "created", "took", "exit", "command")
    for r in records:
        table.add_row(
            r.execution_id,
            r.state,
            r.category or r.agent or "shell",
            _when(r.created_at),
            _seconds(r.execution_time),
            "-" if r.exit_code is None else str(r.exit_code),
            _short(r.command, COMMAND_SHOWN_CHARS),
        )
    console.print(table)
    if not records:
        console.print("no executions stored")


@history_app.command("show")
def show(
    execution_id: Annotated[str, typer.Argument(help="The execution id.")],
    output: Annotated[
        bool, typer.Option("--output", help="Also print its output, rebuilt from stored events.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """One execution's record (and, with --output, its stdout and stderr as stored)."""
    settings = build_settings()

    async def work(store: Store) -> tuple[ExecutionRecord | None, str | None]:
        found = await store.get_execution(execution_id)
        if found is None or not output:
            return found, None
        return found, rebuild_output(await read_all_events(store, execution_id))

    record, text = _run(settings, work)
    if record is None:
        fail(f"execution {execution_id!r} not found in the store")
    if json_output:
        shown: dict[str, Any] = dataclasses.asdict(record)
        if output:
            shown["output"] = text
        _print_json(shown)
        return
    table = Table("field", "value", show_header=False)
    for name, value in dataclasses.asdict(record).items():
        table.add_row(name, value if isinstance(value, str) else orjson.dumps(value).decode())
    console.print(table)
    if output:
        console.rule("output")
        console.out(text or "", highlight=False, end="")


@history_app.command("export")
def export(
    *,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    format: Annotated[ExportFormat, typer.Option("--format", help="json or csv.")] = "json",
    status: StatusOption = None,
    since: SinceOption = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many, newest first.")
    ] = None,
    export_dir: Annotated[
        Path | None,
        typer.Option("--export-dir", help="The output must resolve inside this directory (cwd)."),
    ] = None,
) -> None:
    """Write executions to a JSON or CSV file (columns: docs/history.md)."""
    settings = build_settings()
    started = _since(since)
    written, count = _run(
        settings,
        lambda store: export_executions(
            store,
            format,
            output,
            base_dir=export_dir,
            status=status,
            since=started,
            limit=limit,
        ),
    )
    console.out(f"wrote {count} execution(s) to {written}", highlight=False)


def _render_metrics(metrics: dict[str, Any]) -> None:
    counts = Table("state", "executions", title="executions")
    for state, count in metrics["counts"].items():
        counts.add_row(state, str(count))
    console.print(counts)
    rate = metrics["success_rate"]
    duration = metrics["duration_s"]
    console.out(
        f"success rate: {'-' if rate is None else f'{rate:.1%}'} of {metrics['finished']} "
        f"finished; duration p50 {_seconds(duration['p50'])}, p90 {_seconds(duration['p90'])}",
        highlight=False,
    )
    spend = Table(
        "per",
        "items",
        "with cost",
        "total USD",
        "USD / item",
        "input tok / item",
        "output tok / item",
        title="cost and tokens (provider-reported)",
    )
    for label, key in (("task", "per_task"), ("task list", "per_task_list")):
        part = metrics["provider_reported"][key]
        per_item = part["tokens_per_item"]
        spend.add_row(
            label,
            str(part["count"]),
            str(part["with_cost"]),
            _money(part["total_cost_usd"]),
            _money(part["cost_usd_per_item"]),
            _amount(per_item["input_tokens"]),
            _amount(per_item["output_tokens"]),
        )
    console.print(spend)
    timeouts = Table(
        "class",
        "runs",
        "actual p50",
        "actual p90",
        "predicted",
        "predicted p50",
        "timed out",
        "used p90",
        title="timeout predictions against actual durations",
    )
    for category, row in metrics["timeouts"].items():
        used = row["used_of_predicted"]["p90"]
        timeouts.add_row(
            category,
            str(row["executions"]),
            _seconds(row["actual_s"]["p50"]),
            _seconds(row["actual_s"]["p90"]),
            str(row["predicted"]),
            _seconds(row["predicted_timeout_s"]["p50"]),
            str(row["timed_out"]),
            "-" if used is None else f"{used:.0%}",
        )
    console.print(timeouts)


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _amount(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


@history_app.command("metrics")
def metrics(
    since: SinceOption = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Look at the newest this many executions.")
    ] = METRICS_WINDOW,
    json_output: JsonOption = False,
) -> None:
    """Counts, success rate, durations, provider-reported cost and tokens, timeout predictions."""
    settings = build_settings()
    started = _since(since)
    found = _run(settings, lambda store: compute_metrics(store, since=started, limit=limit))
    if json_output:
        _print_json(found)
        return
    _render_metrics(found)


@history_app.command("prune")
def prune(
    older_than: Annotated[
        float | None,
        typer.Option("--older-than", min=0, help="Days (default: retention_max_age_days)."),
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option("--keep", min=0, help="Executions kept (default: retention_max_executions)."),
    ] = None,
    max_event_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-event-bytes", min=0, help="Stored output cap (retention_max_event_bytes)."
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Delete finished executions (and their events) and finished task lists beyond the limits."""
    settings = build_settings()
    days = older_than if older_than is not None else settings.retention_max_age_days
    kept = keep if keep is not None else settings.retention_max_executions
    cap = max_event_bytes if max_event_bytes is not None else settings.retention_max_event_bytes
    limits = f"older than {days} day(s), beyond the newest {kept}, output over {cap} bytes"
    if days is None and kept is None and cap is None:
        fail("nothing to prune by: give --older-than, --keep or --max-event-bytes", EXIT_USAGE)
    if not yes and not typer.confirm(
        f"Delete finished executions {limits}?", default=False, err=True
    ):
        fail("prune declined (pass --yes to skip the question)")
    report = _run(
        settings,
        lambda store: store.prune(
            older_than_s=None if days is None else days * SECONDS_PER_DAY,
            keep_last=kept,
            max_event_bytes=cap,
        ),
    )
    if json_output:
        _print_json(dataclasses.asdict(report))
        return
    console.out(
        f"pruned {report.executions} execution(s), {report.events} event(s), "
        f"{report.task_lists} task list(s)",
        highlight=False,
    )
