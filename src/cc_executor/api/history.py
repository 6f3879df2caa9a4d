"""Execution history for the Python API: ``export_execution_history`` and this process's results.

Owns: ``export_execution_history`` (the durable store's executions as a JSON or CSV file or
text; the formats, filters and path checks are :mod:`cc_executor.storage.export`, shared with
``cc-executor history``), and the bounded list of :class:`TaskResult` s this process produced
(``verify_execution`` reads their events). Does not own: what is stored (the daemon's recorder)
or how the store is opened (``open_store``).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, overload

from cc_executor.api.result import TaskResult
from cc_executor.config import Settings
from cc_executor.errors import InvalidParams
from cc_executor.storage import ExecutionRecord, open_store
from cc_executor.storage.export import (
    EXPORT_COLUMNS,
    ExportFormat,
    collect_executions,
    export_executions,
    format_export,
    parse_since,
    read_export,
    write_export,
)

__all__ = [
    "DAEMON_LIST_MAX",
    "HISTORY_MAX_RESULTS",
    "clear_history",
    "export_execution_history",
    "find_result",
    "read_export",
    "recent",
    "record",
    "record_from_info",
]

HISTORY_MAX_RESULTS = 1000  # results kept per process for verify_execution; oldest forgotten first
DAEMON_LIST_MAX = 1000  # rows asked of a daemon's `list` when no limit is given

_results: deque[TaskResult] = deque(maxlen=HISTORY_MAX_RESULTS)


def record(result: TaskResult) -> None:
    _results.append(result)


def clear_history() -> None:
    _results.clear()


def recent(limit: int) -> list[TaskResult]:
    """The newest ``limit`` results of this process, newest first."""
    return list(reversed(_results))[: max(0, limit)]


def find_result(execution_id: str) -> TaskResult | None:
    for result in reversed(_results):
        if result.execution_id == execution_id or execution_id in result.extra_execution_ids:
            return result
    return None


def record_from_info(info: Mapping[str, Any]) -> ExecutionRecord:
    """An :class:`ExecutionRecord` from a daemon's ``status``/``list`` row (its known fields).

    The inverse of the service's ``record_info``: ``session_id`` and ``failure`` go back into
    ``result``. Fields ``list`` does not carry keep their defaults.
    """
    values = {k: v for k, v in info.items() if k in EXPORT_COLUMNS and k != "result"}
    result = dict(info.get("result") or {})
    for key in ("session_id", "failure"):
        if info.get(key) is not None:
            result[key] = info[key]
    metadata = info.get("metadata") or {}
    values["metadata"] = dict(metadata)
    values["result"] = result or None
    values["created_at"] = float(info.get("created_at") or 0.0)
    if isinstance(metadata.get("category"), str):
        values["category"] = metadata["category"]
    values["timeout_predicted"] = bool(metadata.get("timeout_predicted", False))
    return ExecutionRecord(**values)


async def _daemon_records(
    settings: Settings,
    server_url: str,
    token: str | None,
    *,
    states: Sequence[str] | None,
    since: float | None,
    limit: int | None,
) -> list[ExecutionRecord]:
    from cc_executor.api.execute import build_runner
    from cc_executor.api.runners import DaemonRunner

    runner = build_runner(settings, server_url, token)
    if not isinstance(runner, DaemonRunner):  # build_runner returns one whenever a URL is given
        raise TypeError(f"expected a daemon runner for {server_url!r}")
    async with runner:
        rows = await runner.list_executions(limit or DAEMON_LIST_MAX)
    records = [record_from_info(row) for row in rows]
    return [
        r
        for r in records
        if (states is None or r.state in states) and (since is None or r.created_at >= since)
    ][:limit]


@overload
async def export_execution_history(
    format: ExportFormat = ...,
    path: None = None,
    *,
    status: str | Sequence[str] | None = ...,
    since: float | datetime | str | None = ...,
    limit: int | None = ...,
    export_dir: str | os.PathLike[str] | None = ...,
    settings: Settings | None = ...,
    server_url: str | None = ...,
    token: str | None = ...,
) -> str: ...


@overload
async def export_execution_history(
    format: ExportFormat,
    path: str | os.PathLike[str],
    *,
    status: str | Sequence[str] | None = ...,
    since: float | datetime | str | None = ...,
    limit: int | None = ...,
    export_dir: str | os.PathLike[str] | None = ...,
    settings: Settings | None = ...,
    server_url: str | None = ...,
    token: str | None = ...,
) -> Path: ...


async def export_execution_history(
    format: ExportFormat = "json",
    path: str | os.PathLike[str] | None = None,
    *,
    status: str | Sequence[str] | None = None,
    since: float | datetime | str | None = None,
    limit: int | None = None,
    export_dir: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    server_url: str | None = None,
    token: str | None = None,
) -> str | Path:
    """Executions from the durable store, newest first, as JSON (an array) or CSV.

    With ``path``: writes the file and returns the resolved path written. ``path`` must resolve
    (symlinks followed) inside ``export_dir`` (default: the current directory); otherwise
    :class:`~cc_executor.errors.InvalidParams`. Without ``path``: returns the text, as the
    earlier ``export_execution_history(format, limit=...)`` did.

    Filters: ``status`` (a state or several), ``since`` (epoch seconds, a datetime, ISO text or
    an age like ``"7d"``), ``limit`` (``None``: all). The store is the one ``settings`` names
    (``open_store``), so a running daemon is not needed. With ``server_url`` the rows come from
    that daemon's ``list`` instead (its newest ``limit`` or 1000, then filtered here).
    Read an export back with :func:`read_export`.
    """
    if isinstance(path, int):  # the earlier signature took limit second
        raise InvalidParams("export_execution_history(format, path): pass limit= by keyword")
    if format not in ("json", "csv"):
        raise InvalidParams(f"export format must be 'json' or 'csv', not {format!r}")
    chosen = settings if settings is not None else Settings()
    started = parse_since(since)
    states = [status] if isinstance(status, str) else status
    if server_url is not None:
        records = await _daemon_records(
            chosen, server_url, token, states=states, since=started, limit=limit
        )
        if path is None:
            return format_export(records, format)
        return write_export(records, format, path, base_dir=export_dir)
    store = open_store(chosen)
    await store.open()
    try:
        if path is None:
            records = await collect_executions(store, status=states, since=started, limit=limit)
            return format_export(records, format)
        written, _ = await export_executions(
            store, format, path, base_dir=export_dir, status=states, since=started, limit=limit
        )
        return written
    finally:
        await store.close()
