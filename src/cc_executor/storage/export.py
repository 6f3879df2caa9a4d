"""History read out of a :class:`~cc_executor.storage.base.Store`: exports, metrics, output.

Owns: the export formats (JSON and CSV, one column per :class:`ExecutionRecord` field, and the
readers that turn an export back into the same records), where an export may be written (inside a
base directory, symlinks resolved), paging through the store's executions and events, rebuilding
an execution's output text from its stored ``process.output`` events, and the metrics of
``cc-executor history metrics``. The CLI (``cli/history_cmd.py``) and the Python API
(``api/history.py``) both call this module; neither has its own copy. Does not own: opening the
store (``open_store``), rendering (the CLI), or deleting anything (``Store.prune``).

Costs and tokens are what the provider reported in the agent's ``result`` event
(``total_cost_usd``, ``usage``); nothing here estimates them.

About 500 lines: exports and metrics read the same records and share one place on purpose; if it
grows further, the metrics section (the last one) is the part to move to its own module.
"""

from __future__ import annotations

import base64
import binascii
import csv
import dataclasses
import io
import math
import os
import re
import statistics
import time
import types
import typing
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from cc_executor.errors import InvalidParams
from cc_executor.protocol.names import Notification
from cc_executor.storage.base import FINISHED_EXECUTION_STATES, ExecutionRecord, Store, StoredEvent

__all__ = [
    "EXECUTION_STATES",
    "EXPORT_COLUMNS",
    "EXPORT_PAGE",
    "METRICS_WINDOW",
    "TOKEN_FIELDS",
    "ExportFormat",
    "collect_executions",
    "compute_metrics",
    "export_executions",
    "format_export",
    "parse_export",
    "parse_since",
    "read_all_events",
    "read_export",
    "rebuild_output",
    "resolve_export_path",
    "write_export",
]

ExportFormat = Literal["json", "csv"]
EXPORT_PAGE = 500  # executions per store read while exporting; bounded memory per round trip
EVENT_PAGE = 1000  # events per store read while rebuilding output
METRICS_WINDOW = 10_000  # newest executions metrics look at unless told otherwise
EXPORT_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ExecutionRecord))
EXECUTION_STATES = (
    "pending",
    "running",
    "paused",
    "waiting_for_limit",
    "completed",
    "failed",
    "timeout",
    "canceled",
    "lost",
)
TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


# --- columns ------------------------------------------------------------------------------------

ColumnKind = Literal["str", "int", "float", "bool", "json"]


def _column_kinds() -> dict[str, tuple[ColumnKind, bool]]:
    """Each field's CSV kind and whether it may be null, from the dataclass annotations."""
    hints = typing.get_type_hints(ExecutionRecord)
    kinds: dict[str, tuple[ColumnKind, bool]] = {}
    for name in EXPORT_COLUMNS:
        hint = hints[name]
        args = typing.get_args(hint)
        optional = isinstance(hint, types.UnionType) and type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if optional else hint
        origin = typing.get_origin(base) or base
        kind: ColumnKind
        if origin in (list, dict):
            kind = "json"
        elif origin is bool:
            kind = "bool"
        elif origin is int:
            kind = "int"
        elif origin is float:
            kind = "float"
        elif origin is str:
            kind = "str"
        else:  # a new field type must be given a CSV form before it can be exported
            raise TypeError(f"ExecutionRecord.{name}: no CSV form for {hint!r}")
        kinds[name] = (kind, optional)
    return kinds


_KINDS = _column_kinds()


def _cell(kind: ColumnKind, value: object) -> str:
    if value is None:
        return ""
    if kind == "json":
        return orjson.dumps(value).decode()
    if kind == "bool":
        return "true" if value else "false"
    if kind == "float" and isinstance(value, int | float):
        return repr(float(value))  # repr is the shortest text that reads back to the same float
    return str(value)


def _uncell(name: str, text: str) -> object:
    kind, optional = _KINDS[name]
    if text == "" and (optional or kind != "str"):
        if not optional:
            raise ValueError(f"column {name!r} may not be empty")
        return None
    if kind == "json":
        return orjson.loads(text)
    if kind == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"column {name!r}: {text!r} is not true or false")
        return text == "true"
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    return text


# --- formats ------------------------------------------------------------------------------------


def format_export(records: Iterable[ExecutionRecord], format: ExportFormat) -> str:
    """Records as a JSON array of objects, or CSV with :data:`EXPORT_COLUMNS` as header.

    CSV cells: lists and dicts as JSON, booleans ``true``/``false``, numbers as Python writes
    them, an empty cell for null. (An empty string in an optional text column therefore reads
    back as null; the daemon never writes one.)
    """
    if format == "json":
        rows = [dataclasses.asdict(record) for record in records]
        return orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n"
    if format != "csv":
        raise InvalidParams(f"export format must be 'json' or 'csv', not {format!r}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for record in records:
        writer.writerow(_cell(_KINDS[n][0], getattr(record, n)) for n in EXPORT_COLUMNS)
    return out.getvalue()


def _record(values: Mapping[str, Any]) -> ExecutionRecord:
    unknown = set(values) - set(EXPORT_COLUMNS)
    if unknown:
        raise ValueError(f"not execution record fields: {sorted(unknown)}")
    return ExecutionRecord(**values)


def parse_export(text: str, format: ExportFormat) -> list[ExecutionRecord]:
    """The records of an export's text (the inverse of :func:`format_export`)."""
    if format == "json":
        rows = orjson.loads(text)
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError("a JSON export is an array of objects")
        return [_record(row) for row in rows]
    if format != "csv":
        raise InvalidParams(f"export format must be 'json' or 'csv', not {format!r}")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return []
    return [
        _record({name: _uncell(name, cell) for name, cell in zip(header, row, strict=True)})
        for row in reader
    ]


def read_export(
    path: str | os.PathLike[str], format: ExportFormat | None = None
) -> list[ExecutionRecord]:
    """The records of an export file; the format comes from the suffix unless given."""
    file = Path(path)
    chosen = format or ("csv" if file.suffix.lower() == ".csv" else "json")
    return parse_export(file.read_text(encoding="utf-8"), chosen)


# --- where exports go ---------------------------------------------------------------------------


def resolve_export_path(
    path: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None
) -> Path:
    """``path`` resolved (symlinks followed); :class:`InvalidParams` unless inside ``base_dir``.

    A relative ``path`` is taken relative to ``base_dir`` (default: the current directory).
    ``..`` components and symlinks (in any directory on the way, or the file itself) are
    resolved first, so neither can lead outside.
    """
    base = Path(base_dir if base_dir is not None else Path.cwd()).resolve()
    if not base.is_dir():
        raise InvalidParams(
            f"export directory {str(base)!r} is not a directory", base_dir=str(base)
        )
    given = Path(path).expanduser()
    resolved = (given if given.is_absolute() else base / given).resolve()
    if not resolved.is_relative_to(base):
        raise InvalidParams(
            f"export path {str(path)!r} resolves to {str(resolved)!r}, outside the export "
            f"directory {str(base)!r}; write inside it or choose another export directory",
            path=str(path),
            base_dir=str(base),
        )
    if resolved.is_dir():
        raise InvalidParams(f"export path {str(resolved)!r} is a directory", path=str(path))
    return resolved


def _write_atomically(target: Path, text: str) -> None:
    """Write a sibling temporary file, then rename it over ``target``.

    The rename replaces a symlink planted at ``target`` after validation instead of following
    it, and readers never see half an export.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# --- reading the store --------------------------------------------------------------------------


def parse_since(value: float | datetime | str | None, *, now: float | None = None) -> float | None:
    """Epoch seconds from a number, a datetime, ISO 8601 text, or an age like ``7d`` / ``12h``.

    Naive datetimes are taken as UTC.
    """
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    if isinstance(value, datetime):
        moment = value
    else:
        relative = _RELATIVE.match(value)
        if relative:
            amount, unit = relative.groups()
            return (time.time() if now is None else now) - float(amount) * _UNIT_S[unit]
        try:
            return float(value)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidParams(
                f"since {value!r}: give ISO 8601 (2025-01-31 or 2025-01-31T12:00), epoch seconds, "
                "or an age such as 30m, 12h, 7d, 2w",
                since=value,
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


async def collect_executions(
    store: Store,
    *,
    status: str | Sequence[str] | None = None,
    since: float | None = None,
    limit: int | None = None,
) -> list[ExecutionRecord]:
    """Executions newest first, paging by ``created_at``; ``limit=None`` reads them all.

    The store pages by "``created_at`` strictly older than ``before``", which would skip records
    that share the oldest timestamp of a page with records beyond it. So each next page starts
    *at* that timestamp (``before`` just above it) and drops the ids already returned there;
    it asks for that many more rows, so every full page brings :data:`EXPORT_PAGE` new ones.
    """
    states = [status] if isinstance(status, str) else (list(status) if status else None)
    found: list[ExecutionRecord] = []
    boundary: float | None = None  # created_at of the oldest record returned so far
    at_boundary: set[str] = set()  # ids returned with exactly that created_at
    while limit is None or len(found) < limit:
        size = EXPORT_PAGE + len(at_boundary)
        before = None if boundary is None else math.nextafter(boundary, math.inf)
        page = await store.list_executions(states=states, limit=size, before=before, since=since)
        found.extend(r for r in page if r.execution_id not in at_boundary)
        if len(page) < size:
            break
        oldest = page[-1].created_at
        if oldest != boundary:
            at_boundary = set()
        at_boundary.update(r.execution_id for r in page if r.created_at == oldest)
        boundary = oldest
    return found if limit is None else found[:limit]


def write_export(
    records: Iterable[ExecutionRecord],
    format: ExportFormat,
    path: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``records`` to ``path`` (checked by :func:`resolve_export_path`); the path written."""
    if format not in ("json", "csv"):
        raise InvalidParams(f"export format must be 'json' or 'csv', not {format!r}")
    target = resolve_export_path(path, base_dir)
    _write_atomically(target, format_export(records, format))
    return target


async def export_executions(
    store: Store,
    format: ExportFormat,
    path: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    status: str | Sequence[str] | None = None,
    since: float | None = None,
    limit: int | None = None,
) -> tuple[Path, int]:
    """Write the matching executions to ``path``; the path written and how many were written.

    The path is checked before the store is read, so a refused path costs nothing.
    """
    resolve_export_path(path, base_dir)
    records = await collect_executions(store, status=status, since=since, limit=limit)
    return write_export(records, format, path, base_dir=base_dir), len(records)


async def read_all_events(store: Store, execution_id: str) -> list[StoredEvent]:
    """Every stored event of one execution, oldest first."""
    events: list[StoredEvent] = []
    after = 0
    while True:
        page = await store.read_events(execution_id, after_seq=after, limit=EVENT_PAGE)
        events.extend(page)
        if len(page) < EVENT_PAGE:
            return events
        after = page[-1].seq


def rebuild_output(
    events: Iterable[StoredEvent], streams: Sequence[str] = ("stdout", "stderr")
) -> str:
    """The text of an execution's ``process.output`` pieces in ``seq`` order.

    Pieces are joined as bytes (base64 pieces decoded), so a character split across pieces
    comes back whole; bytes that are not UTF-8 show as U+FFFD.
    """
    joined = bytearray()
    for event in events:
        if event.method != Notification.PROCESS_OUTPUT:
            continue
        params = orjson.loads(event.frame).get("params", {})
        if params.get("type") not in streams:
            continue
        data = params.get("data", "")
        if params.get("encoding") == "base64":
            try:
                joined += base64.b64decode(data, validate=True)
            except binascii.Error:
                joined += f"<undecodable base64 piece at seq {event.seq}>".encode()
        else:
            joined += data.encode("utf-8", "surrogatepass")
    return joined.decode("utf-8", "replace")


# --- metrics ------------------------------------------------------------------------------------


def _quantiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "mean": None}
    ordered = sorted(values)

    def rank(pct: float) -> float:  # nearest rank: a value that occurred, never interpolated
        return ordered[max(math.ceil(pct / 100 * len(ordered)), 1) - 1]

    return {"p50": rank(50), "p90": rank(90), "mean": statistics.fmean(ordered)}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _spend(records: Iterable[ExecutionRecord]) -> tuple[float | None, dict[str, int]]:
    cost: float | None = None
    tokens = dict.fromkeys(TOKEN_FIELDS, 0)
    for record in records:
        result = record.result or {}
        spent = _number(result.get("total_cost_usd"))
        if spent is not None:
            cost = (cost or 0.0) + spent
        usage = result.get("usage")
        if isinstance(usage, dict):
            for name in TOKEN_FIELDS:
                tokens[name] += int(_number(usage.get(name)) or 0)
    return cost, tokens


def _per(total: float | None, count: int) -> float | None:
    return None if total is None or count == 0 else total / count


def _spend_summary(groups: Sequence[Sequence[ExecutionRecord]]) -> dict[str, Any]:
    """Totals over ``groups`` and the mean per group (a group is a task or a task list)."""
    cost, tokens = _spend(r for group in groups for r in group)
    priced = sum(1 for group in groups if _spend(group)[0] is not None)
    return {
        "count": len(groups),
        "with_cost": priced,
        "total_cost_usd": cost,
        "cost_usd_per_item": _per(cost, priced),
        "tokens": tokens,
        "tokens_per_item": {k: _per(float(v), len(groups)) for k, v in tokens.items()},
    }


def _timeouts(records: Sequence[ExecutionRecord]) -> dict[str, dict[str, Any]]:
    classes: dict[str, list[ExecutionRecord]] = defaultdict(list)
    for record in records:
        if record.category is not None and record.state in FINISHED_EXECUTION_STATES:
            classes[record.category].append(record)
    report: dict[str, dict[str, Any]] = {}
    for category, members in sorted(classes.items()):
        actual = [r.execution_time for r in members if r.execution_time is not None]
        pairs = [  # (predicted timeout, actual duration, state) of runs that ran with a prediction
            (r.timeout, r.execution_time, r.state)
            for r in members
            if r.timeout_predicted and r.timeout and r.execution_time is not None
        ]
        report[category] = {
            "executions": len(members),
            "actual_s": _quantiles(actual),
            "predicted": len(pairs),
            "predicted_timeout_s": _quantiles([timeout for timeout, _, _ in pairs]),
            "timed_out": sum(1 for _, _, state in pairs if state == "timeout"),
            "used_of_predicted": _quantiles([took / timeout for timeout, took, _ in pairs]),
        }
    return report


async def compute_metrics(
    store: Store, *, since: float | None = None, limit: int | None = METRICS_WINDOW
) -> dict[str, Any]:
    """The metrics of ``history metrics`` over the newest ``limit`` executions since ``since``.

    ``counts``: executions per state. ``success_rate``: completed / finished (finished =
    completed, failed, timeout, canceled, lost; ``None`` when none finished). ``duration_s``:
    p50/p90/mean of ``execution_time`` of finished executions. ``provider_reported``: cost and
    tokens from the agent's ``result``, per task (an agent execution; retries of a task-list task
    count separately) and per task list. ``timeouts``: per class, actual durations, the predicted
    timeouts, how many predicted runs timed out, and actual/predicted.
    """
    records = await collect_executions(store, since=since, limit=limit)
    counts = Counter(r.state for r in records)
    finished = [r for r in records if r.state in FINISHED_EXECUTION_STATES]
    durations = [r.execution_time for r in finished if r.execution_time is not None]
    tasks = [[r] for r in records if r.agent is not None]
    lists: dict[str, list[ExecutionRecord]] = defaultdict(list)
    for record in records:
        if record.task_list_id is not None:
            lists[record.task_list_id].append(record)
    return {
        "window": {"executions": len(records), "since": since, "limit": limit},
        "counts": {state: counts.get(state, 0) for state in EXECUTION_STATES}
        | {s: n for s, n in counts.items() if s not in EXECUTION_STATES},
        "finished": len(finished),
        "success_rate": _per(float(counts.get("completed", 0)), len(finished)),
        "duration_s": _quantiles(durations),
        "provider_reported": {
            "per_task": _spend_summary(tasks),
            "per_task_list": _spend_summary(list(lists.values())),
        },
        "timeouts": _timeouts(records),
    }
