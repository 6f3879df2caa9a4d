"""What the task API ran in this process, and ``export_execution_history``.

The embedded store is a bounded in-memory list of :class:`TaskResult` s (newest last): durable
history (SQLite/Redis) comes with the storage layer in a later issue. With a daemon URL the
export reads the daemon's ``list`` instead (what it still holds in memory).
"""

from __future__ import annotations

import csv
import io
import json
from collections import deque
from collections.abc import Mapping
from typing import Literal

from cc_executor.api.result import TaskResult

__all__ = [
    "CSV_COLUMNS",
    "HISTORY_MAX_RESULTS",
    "clear_history",
    "find_result",
    "format_history",
    "local_rows",
    "recent",
    "record",
]

HISTORY_MAX_RESULTS = 1000  # results kept per process; oldest forgotten first
CSV_COLUMNS = (
    "execution_id",
    "state",
    "success",
    "task",
    "session_id",
    "cost_usd",
    "num_turns",
    "execution_time",
    "started_at",
    "ended_at",
    "uuid_found",
    "receipt_path",
    "report_path",
    "error",
)

_results: deque[TaskResult] = deque(maxlen=HISTORY_MAX_RESULTS)


def record(result: TaskResult) -> None:
    _results.append(result)


def clear_history() -> None:
    _results.clear()


def recent(limit: int) -> list[TaskResult]:
    """The newest ``limit`` results, newest first."""
    return list(reversed(_results))[: max(0, limit)]


def find_result(execution_id: str) -> TaskResult | None:
    for result in reversed(_results):
        if result.execution_id == execution_id or execution_id in result.extra_execution_ids:
            return result
    return None


def _row(result: TaskResult) -> dict[str, object]:
    data = result.to_dict()
    return {column: data.get(column) for column in CSV_COLUMNS}


def format_history(
    rows: list[Mapping[str, object]], format: Literal["json", "csv"] = "json"
) -> str:
    """``rows`` as a JSON array or as CSV (columns: the union of keys, in first-seen order)."""
    if format == "json":
        return json.dumps([dict(r) for r in rows], indent=2, default=str)
    if format != "csv":
        raise ValueError(f"format must be 'json' or 'csv', not {format!r}")
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()}
        )
    return out.getvalue()


def local_rows(limit: int) -> list[Mapping[str, object]]:
    return [_row(result) for result in recent(limit)]
