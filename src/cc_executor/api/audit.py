"""After the fact: ``verify_execution`` (receipts) and ``export_execution_history``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from cc_executor.api import history
from cc_executor.api.execute import build_runner, reports_dir_of, settings_or_default
from cc_executor.api.receipts import Verification, verify
from cc_executor.api.runners import DaemonRunner
from cc_executor.config import Settings

__all__ = ["export_execution_history", "verify_execution"]


def verify_execution(
    execution_id: str,
    *,
    reports_dir: str | Path | None = None,
    settings: Settings | None = None,
) -> Verification:
    """Check that ``execution_id`` really ran and echoed its receipt UUID.

    Reads the receipt from the reports dir, then checks the UUID against the events this
    process recorded for the execution (when it ran here) and against the Claude CLI's own
    transcript of the session (the prompt's sha256 and the UUID in an assistant answer). Files
    the model could have written in its working directory are never evidence.
    ``verified`` is true when at least one check passed and none failed.
    """
    folder = (
        Path(reports_dir)
        if reports_dir is not None
        else reports_dir_of(settings_or_default(settings))
    )
    result = history.find_result(execution_id)
    events = result.events if result is not None and result.execution_id == execution_id else None
    return verify(execution_id, folder, events)


async def export_execution_history(
    format: Literal["json", "csv"] = "json",
    limit: int = 100,
    *,
    server_url: str | None = None,
    settings: Settings | None = None,
    token: str | None = None,
) -> str:
    """The newest ``limit`` executions as JSON (an array) or CSV text.

    Without ``server_url``: the tasks this process ran through the Python API (kept in memory,
    newest first). With ``server_url``: the daemon's ``list`` (what it still holds in memory).
    Durable history across restarts comes with the storage layer in a later issue.
    """
    if format not in ("json", "csv"):
        raise ValueError(f"format must be 'json' or 'csv', not {format!r}")
    if server_url is None:
        return history.format_history(history.local_rows(limit), format)
    runner = build_runner(settings_or_default(settings), server_url, token)
    assert isinstance(runner, DaemonRunner)
    async with runner:
        rows = await runner.list_executions(limit)
    return history.format_history(list(rows), format)
