"""``cc-executor test``: ``assess core|cli|hooks|claude`` here, ``stress`` from ``stress_cmd``.

Parses options, builds the target from ``Settings``, runs :mod:`cc_executor.client.assess` and
renders: one line per check as it ends, then the Markdown report written to a file. Exit 0 when
every check passed (skipped ones included), 1 when one failed.
"""

from __future__ import annotations

import asyncio
import enum
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from cc_executor.cli.console import (
    EXIT_FAILURE,
    build_settings,
    console,
    exit_code_for_error,
    fail,
)
from cc_executor.cli.stress_cmd import stress
from cc_executor.client.assess import Assessment, CheckResult, Outcome, Target, run_assessment
from cc_executor.config import Settings
from cc_executor.errors import CCExecutorError

__all__ = ["REPORT_TIME_FORMAT", "Suite", "assess", "target_for", "test_app"]

REPORT_TIME_FORMAT = "%Y%m%dT%H%M%SZ"  # sortable, and no characters a file name dislikes

test_app = typer.Typer(
    help="Self-checks and load tests against a running daemon.", no_args_is_help=True
)
HostOption = Annotated[
    str | None, typer.Option("--host", help="The daemon's host (CC_EXECUTOR_HOST).")
]
PortOption = Annotated[int | None, typer.Option("--port", help="The daemon's port.")]


class Suite(enum.StrEnum):
    CORE = "core"
    CLI = "cli"
    HOOKS = "hooks"
    CLAUDE = "claude"


def target_for(settings: Settings) -> Target:
    """Where a local client reaches the daemon of ``settings``, with its token."""
    from cc_executor.server.daemon import probe_host

    token = settings.token.get_secret_value() if settings.token is not None else None
    return Target(probe_host(settings.host), settings.port, token, settings.token_file)


_MARKS = {Outcome.PASS: "[green]pass[/]", Outcome.FAIL: "[red]FAIL[/]", Outcome.SKIP: "skip"}


def _show(result: CheckResult) -> None:
    console.print(
        f"{_MARKS[result.outcome]}  {result.name:<15} {result.duration_s:6.2f}s  ",
        end="",
    )
    console.print(result.detail, markup=False)


def _write(assessment: Assessment, output: Path | None) -> Path:
    stamp = assessment.started_at.astimezone(UTC).strftime(REPORT_TIME_FORMAT)
    path = output or Path.cwd() / f"assessment-{assessment.suite}-{stamp}.md"
    try:
        path.write_text(assessment.to_markdown(), encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write the report {path}: {exc}")
    return path


def assess(
    suite: Annotated[Suite, typer.Argument(help="Which behaviours to check.")],
    *,
    host: HostOption = None,
    port: PortOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Report file (default ./assessment-SUITE-TIME.md)."),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="claude suite: also run a real, tiny prompt.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the results as one JSON object.")
    ] = False,
) -> None:
    """Check a running daemon's behaviour and write a Markdown report (exit 1 if a check fails)."""
    settings = build_settings(host=host, port=port)
    target = target_for(settings)
    if not json_output:
        console.print(f"assessing {suite.value} against {target.url} ({datetime.now(UTC):%c} UTC)")
    try:
        assessment = asyncio.run(
            run_assessment(suite.value, target, live=live, on_result=None if json_output else _show)
        )
    except CCExecutorError as exc:
        raise typer.Exit(
            exit_code_for_error(
                exc, unreachable_hint=" (is it running? `cc-executor server start`)"
            )
        ) from None
    path = _write(assessment, output)
    if json_output:
        body = {**assessment.to_dict(), "report": str(path)}
        console.out(orjson.dumps(body).decode(), highlight=False)
    else:
        verdict = "[green]all checks passed[/]" if assessment.passed else "[red]checks failed[/]"
        console.print(f"{verdict}; report: {path}")
    if not assessment.passed:
        raise typer.Exit(EXIT_FAILURE)


test_app.command("assess")(assess)
test_app.command("stress")(stress)
