"""The storage contract: records and the :class:`Store` protocol every backend implements.

Owns: what is durable (executions, their events by ``seq``, task lists and tasks, hook runs,
duration samples for timeout prediction) and the async API to read and write it. Does not own:
when things are written (``storage/recorder.py`` batches the supervisor's events and state
changes), or what the records mean to a door.

Backends: :class:`~cc_executor.storage.sqlite.SqliteStore` (embedded default) and
:class:`~cc_executor.storage.redis.RedisStore` (the same contract; scale-out). One contract test
suite (``tests/storage/test_contract.py``) runs against both.

Rules every backend keeps:

* Writes of one caller are applied in call order. ``put_*`` is an upsert of the whole record.
* ``append_events`` is idempotent per ``(execution_id, seq)``: writing a seq again is ignored, so a
  recorder that retries after a crash never duplicates an event.
* Reads return plain records (frozen dataclasses); lists are newest first unless said otherwise.
* Nothing here raises for "not found": getters return ``None``, lists return ``[]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "FINISHED_EXECUTION_STATES",
    "FINISHED_TASK_LIST_STATES",
    "LOST",
    "DurationSample",
    "ExecutionRecord",
    "HookRunRecord",
    "PruneReport",
    "Store",
    "StoredEvent",
    "TaskListRecord",
    "TaskRecord",
]

LOST = "lost"
"""The state of an execution the store says was running when its daemon died."""

FINISHED_EXECUTION_STATES = frozenset({"completed", "failed", "timeout", "canceled", LOST})
"""Execution states that never change again; only these are ever pruned."""

FINISHED_TASK_LIST_STATES = frozenset({"completed", "failed", "canceled"})
"""Task list states that never change again; only these are ever pruned."""


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """One execution as the store keeps it (the ``status`` view plus what recovery needs)."""

    execution_id: str
    state: str  # an ExecutionState value, or "lost"
    command: str  # display form (the shell command, or shlex.join(argv))
    argv: list[str] = field(default_factory=list)
    cwd: str | None = None
    agent: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    pgid: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    reason: str | None = None
    created_at: float = 0.0  # Unix epoch seconds
    started_at: float | None = None
    ended_at: float | None = None
    execution_time: float | None = None  # seconds, spawn to end
    last_seq: int = 0  # newest event seq persisted with this record (events may be ahead)
    attempt: int = 0
    task_list_id: str | None = None
    task_index: int | None = None
    timeout: float | None = None  # the wall-clock timeout it ran with (given or predicted)
    timeout_predicted: bool = False
    category: str | None = None  # timeout-prediction class, e.g. "claude:code:medium"
    result: dict[str, Any] | None = None  # agent result: text, cost_usd, tokens (provider-reported)
    output_bytes: int = 0
    owner: str | None = None  # the service instance running it (see Store.heartbeat)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One notification of an execution, already encoded as its JSON-RPC frame."""

    execution_id: str
    seq: int
    method: str
    frame: str


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One task of a task list; ``spec`` is the ``execute`` params it runs with."""

    list_id: str
    index: int  # 0-based position; tasks run in index order
    spec: dict[str, Any]
    # queued running paused waiting_for_limit completed failed canceled skipped
    state: str = "queued"
    timeout: float | None = None
    retries: int = 0
    on_failure: str = "stop"  # "stop" | "continue"
    depends_on: list[int] = field(default_factory=list)  # indexes that must have completed
    attempts: int = 0
    execution_ids: list[str] = field(default_factory=list)  # one per attempt, oldest first
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    error: str | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TaskListRecord:
    """A durable task list; its tasks are separate :class:`TaskRecord` rows."""

    list_id: str
    state: str = "queued"  # queued running paused completed failed canceled
    name: str | None = None
    queue_paused: bool = False  # the running task finishes; the next one is held
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    total_tasks: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None  # the service instance running it (see Store.heartbeat)


@dataclass(frozen=True, slots=True)
class HookRunRecord:
    """One run of one hook."""

    hook: str
    event: str  # pre_execution post_execution on_state_change pre_task post_task
    started_at: float
    duration_s: float
    ok: bool
    proceed: bool = True
    message: str | None = None
    error: str | None = None
    execution_id: str | None = None
    list_id: str | None = None


@dataclass(frozen=True, slots=True)
class DurationSample:
    """How long one finished execution of a class took (timeout prediction learns from these)."""

    category: str
    duration_s: float
    recorded_at: float
    execution_id: str | None = None
    predicted_timeout_s: float | None = None
    state: str = "completed"


@dataclass(frozen=True, slots=True)
class PruneReport:
    executions: int = 0
    events: int = 0
    task_lists: int = 0


@runtime_checkable
class Store(Protocol):
    """The durable store. Open with ``await store.open()``, close with ``await store.close()``."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # --- executions ----------------------------------------------------------------------------
    async def put_execution(self, record: ExecutionRecord) -> None: ...
    async def put_executions(self, records: Sequence[ExecutionRecord]) -> None:
        """Upsert several records at once (the recorder's round: one store round trip)."""
        ...

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None: ...
    async def list_executions(
        self,
        *,
        states: Sequence[str] | None = None,
        limit: int = 100,
        before: float | None = None,  # created_at strictly older than this (paging)
        since: float | None = None,  # created_at at or after this
        task_list_id: str | None = None,
    ) -> list[ExecutionRecord]: ...
    async def count_executions(self, *, states: Sequence[str] | None = None) -> int: ...

    # --- events --------------------------------------------------------------------------------
    async def append_events(self, events: Sequence[StoredEvent]) -> None: ...
    async def read_events(
        self, execution_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[StoredEvent]: ...  # oldest first, seq > after_seq
    async def last_event_seq(self, execution_id: str) -> int: ...  # 0 when none

    # --- task lists ----------------------------------------------------------------------------
    async def put_task_list(self, record: TaskListRecord) -> None: ...
    async def get_task_list(self, list_id: str) -> TaskListRecord | None: ...
    async def list_task_lists(
        self, *, states: Sequence[str] | None = None, limit: int = 100
    ) -> list[TaskListRecord]: ...
    async def claim_task_list(
        self, list_id: str, *, expected_owner: str | None, owner: str, at: float
    ) -> bool: ...  # compare-and-set of the owner: True only for the one caller that won
    async def put_task(self, record: TaskRecord) -> None: ...
    async def get_tasks(self, list_id: str) -> list[TaskRecord]: ...  # index order

    # --- hooks and statistics --------------------------------------------------------------------
    async def add_hook_run(self, record: HookRunRecord) -> None: ...
    async def list_hook_runs(
        self, *, hook: str | None = None, limit: int = 50
    ) -> list[HookRunRecord]: ...
    async def add_duration(self, sample: DurationSample) -> None: ...
    async def durations(
        self, category: str | None = None, *, limit: int = 200
    ) -> list[DurationSample]: ...  # newest first; all categories when None

    # --- owners (which service instance runs what) -----------------------------------------------
    async def heartbeat(self, owner: str, at: float) -> None: ...  # owner is alive at ``at``
    async def owner_heartbeats(self) -> dict[str, float]: ...  # owner -> latest heartbeat
    async def forget_owner(self, owner: str) -> None: ...  # a clean shutdown

    # --- retention -----------------------------------------------------------------------------
    async def prune(
        self,
        *,
        older_than_s: float | None = None,
        keep_last: int | None = None,
        max_event_bytes: int | None = None,
    ) -> PruneReport: ...  # only finished executions and lists are ever pruned
