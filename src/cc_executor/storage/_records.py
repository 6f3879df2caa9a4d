"""How store records become flat rows (SQLite) or hash fields (Redis) and back.

Owns: the field list of every record type, which fields travel as JSON (lists, dicts) or as
integers (booleans), their encoding, and the retention caps both backends share. Does not own any
I/O: the backends decide where the flat values go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

import orjson

from cc_executor.storage.base import (
    DurationSample,
    ExecutionRecord,
    HookRunRecord,
    TaskListRecord,
    TaskRecord,
)

__all__ = [
    "DURATIONS",
    "DURATIONS_KEPT_PER_CATEGORY",
    "DURATIONS_KEPT_TOTAL",
    "EXECUTIONS",
    "HOOK_RUNS",
    "HOOK_RUNS_KEPT",
    "TASKS",
    "TASK_LISTS",
    "RecordShape",
    "frame_bytes",
]

HOOK_RUNS_KEPT = 10_000  # hook runs are for inspection ("why was this blocked?"), not history
DURATIONS_KEPT_PER_CATEGORY = 1_000  # timeout prediction needs a recent window, not all of time
DURATIONS_KEPT_TOTAL = 10_000  # the all-categories view (Redis keeps it as its own capped list)

R = TypeVar("R", ExecutionRecord, TaskRecord, TaskListRecord, HookRunRecord, DurationSample)


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class RecordShape(Generic[R]):
    """The flat form of one record type: field names in declaration order, JSON and bool fields."""

    cls: type[R]
    json_fields: frozenset[str]
    bool_fields: frozenset[str]
    # Field names in declaration order; computed once (every row written or read uses them).
    names: tuple[str, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(f.name for f in fields(self.cls)))

    def to_row(self, record: R) -> tuple[object, ...]:
        """Column values in :attr:`names` order: JSON text for lists/dicts, 0/1 for booleans."""
        row: list[object] = []
        for name in self.names:
            value = getattr(record, name)
            if name in self.json_fields:
                row.append(None if value is None else _dumps(value))
            elif name in self.bool_fields:
                row.append(int(value))
            else:
                row.append(value)
        return tuple(row)

    def from_row(self, row: Sequence[Any]) -> R:
        kwargs: dict[str, Any] = {}
        for name, value in zip(self.names, row, strict=True):
            if name in self.json_fields:
                kwargs[name] = None if value is None else orjson.loads(value)
            elif name in self.bool_fields:
                kwargs[name] = bool(value)
            else:
                kwargs[name] = value
        return self.cls(**kwargs)

    def to_fields(self, record: R) -> dict[str, str]:
        """Every field JSON-encoded, so ``None``, numbers and strings all survive exactly."""
        return {name: _dumps(getattr(record, name)) for name in self.names}

    def from_fields(self, mapping: Mapping[str | bytes, str | bytes]) -> R:
        """The inverse of :meth:`to_fields`; unknown fields are ignored, missing ones defaulted."""
        known = set(self.names)
        kwargs: dict[str, Any] = {}
        for key, value in mapping.items():
            name = key if isinstance(key, str) else key.decode()
            if name in known:
                kwargs[name] = orjson.loads(value)
        return self.cls(**kwargs)

    def to_json(self, record: R) -> str:
        return _dumps({name: getattr(record, name) for name in self.names})

    def from_json(self, text: str | bytes) -> R:
        data = orjson.loads(text)
        known = set(self.names)
        return self.cls(**{k: v for k, v in data.items() if k in known})


EXECUTIONS = RecordShape(
    ExecutionRecord,
    json_fields=frozenset({"argv", "metadata", "result"}),
    bool_fields=frozenset({"timeout_predicted"}),
)
TASK_LISTS = RecordShape(
    TaskListRecord, json_fields=frozenset({"metadata"}), bool_fields=frozenset({"queue_paused"})
)
TASKS = RecordShape(
    TaskRecord,
    json_fields=frozenset({"spec", "depends_on", "execution_ids", "result"}),
    bool_fields=frozenset(),
)
HOOK_RUNS = RecordShape(
    HookRunRecord, json_fields=frozenset(), bool_fields=frozenset({"ok", "proceed"})
)
DURATIONS = RecordShape(DurationSample, json_fields=frozenset(), bool_fields=frozenset())


def frame_bytes(frame: str) -> int:
    """UTF-8 size of a frame; frames are nearly always ASCII, where this is O(1)."""
    return len(frame) if frame.isascii() else len(frame.encode())
