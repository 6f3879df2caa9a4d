"""The embedded store: one SQLite file in WAL mode (the single-machine default).

Owns: the schema and its migrations (``PRAGMA user_version`` + :data:`MIGRATIONS`), the file's
permissions (0600), and running every SQLite call off the event loop. Does not own when anything
is written (the recorder decides) or what records mean.

Threads: one writer thread with its own connection (a single-worker executor, so writes are applied
in call order) and one reader thread with a read-only connection. WAL lets a read run while a long
write transaction is open; the reader sees the last committed state.

Durability: every write method returns after its transaction committed. With
``synchronous="NORMAL"`` a committed write survives a crash of the daemon but the last commits may
be lost on power failure or a kernel crash; ``"FULL"`` syncs the WAL on every commit and survives
both. See ``docs/storage.md``.

Length: past 500 lines because the schema text lives here beside the queries that depend on it;
splitting it out would separate a column from the SQL that reads it.
"""

# SQL text is assembled only from record field names, table names and "?" parameter marks; every
# value is a bound parameter, so S608 (string-built SQL) does not apply anywhere in this module.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

from loguru import logger

from cc_executor.errors import ServiceError
from cc_executor.storage._records import (
    DURATIONS,
    DURATIONS_KEPT_PER_CATEGORY,
    EXECUTIONS,
    HOOK_RUNS,
    HOOK_RUNS_KEPT,
    TASK_LISTS,
    TASKS,
    RecordShape,
    frame_bytes,
)
from cc_executor.storage.base import (
    FINISHED_EXECUTION_STATES,
    FINISHED_TASK_LIST_STATES,
    DurationSample,
    ExecutionRecord,
    HookRunRecord,
    PruneReport,
    StoredEvent,
    TaskListRecord,
    TaskRecord,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteStore", "migrate"]

FILE_MODE = 0o600  # history holds commands, prompts and output: owner only
DIR_MODE = 0o700  # the same for a directory we create
BUSY_TIMEOUT_MS = 5_000  # another process (a CLI reading history) may hold the lock briefly
JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024  # shrink the WAL after one huge write is checkpointed
# Checkpoints (copying the WAL into the database file, with an fsync each side) are the store's
# own job, not every commit's: SQLite's automatic one ran inside the commit that crossed 1000
# pages, and made streaming writes 3x slower (docs/benchmarks.md, round 9). The store checkpoints
# once writes have paused for CHECKPOINT_IDLE_S, or after CHECKPOINT_WAL_BYTES of writes, on a
# connection and thread of their own: a 64 MiB checkpoint takes ~0.6 s here, and on the writer it
# stalled every write behind it (round 10). WAL mode lets the writer append meanwhile. Should the
# WAL still grow past CHECKPOINT_BACKSTOP_BYTES (checkpoints that cannot keep up), the writer
# checkpoints itself, which bounds the WAL under a stream that never pauses.
CHECKPOINT_IDLE_S = 0.25
CHECKPOINT_WAL_BYTES = 64 * 1024 * 1024
CHECKPOINT_BACKSTOP_BYTES = 4 * CHECKPOINT_WAL_BYTES
# Pages of a new file (an existing one keeps its own: SQLite cannot change it in WAL mode).
# Output is most of what the store writes, and every byte of it goes through the kernel three
# times (into the WAL, out of it and into the file at the checkpoint), one page per call. Per
# 20 MB of output the writer and checkpointer threads spent 57-91 ms of CPU with 4 KiB pages,
# 35 with 16 KiB, 31 with 32 KiB and 29 with 64 KiB; a 64 KiB output frame overflows its page
# into one more, so the file grows by 3 %, 7 % and 15 % over the frames (docs/benchmarks.md,
# round 12). A record update rewrites a whole page: ~30 us more of the writer per execution.
PAGE_BYTES = 32 * 1024
WRITE_WAL_BYTES = 4 * PAGE_BYTES  # what a write other than events is counted as (a few pages)
INSERT_ROWS = 16  # events per INSERT statement: few statements, and a bind (under the GIL) of ~1 MB
ANALYSIS_LIMIT_ROWS = 1_000  # planner statistics from a sample: enough to pick the right index

T = TypeVar("T")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: executions and their events
    (
        """CREATE TABLE executions (
            "execution_id" TEXT PRIMARY KEY, "state" TEXT NOT NULL, "command" TEXT NOT NULL,
            "argv" TEXT NOT NULL, "cwd" TEXT, "agent" TEXT, "metadata" TEXT NOT NULL,
            "pid" INTEGER, "pgid" INTEGER, "exit_code" INTEGER, "signal" TEXT, "reason" TEXT,
            "created_at" REAL NOT NULL, "started_at" REAL, "ended_at" REAL,
            "execution_time" REAL, "last_seq" INTEGER NOT NULL, "attempt" INTEGER NOT NULL,
            "task_list_id" TEXT, "task_index" INTEGER, "timeout" REAL,
            "timeout_predicted" INTEGER NOT NULL, "category" TEXT, "result" TEXT,
            "output_bytes" INTEGER NOT NULL)""",
        "CREATE INDEX executions_created ON executions (created_at, execution_id)",
        "CREATE INDEX executions_state ON executions (state, created_at, execution_id)",
        "CREATE INDEX executions_list ON executions (task_list_id, created_at, execution_id)",
        # A rowid table, not WITHOUT ROWID: frames reach 64 KiB and more, far past the size
        # where a clustered primary key pays off.
        """CREATE TABLE events (
            "execution_id" TEXT NOT NULL, "seq" INTEGER NOT NULL, "method" TEXT NOT NULL,
            "frame" TEXT NOT NULL, PRIMARY KEY ("execution_id", "seq"))""",
        # Kept per append so retention by bytes never has to sum a million frames.
        """CREATE TABLE event_totals (
            "execution_id" TEXT PRIMARY KEY, "events" INTEGER NOT NULL,
            "bytes" INTEGER NOT NULL) WITHOUT ROWID""",
    ),
    # 2: task lists, hooks, timing statistics
    (
        """CREATE TABLE task_lists (
            "list_id" TEXT PRIMARY KEY, "state" TEXT NOT NULL, "name" TEXT,
            "queue_paused" INTEGER NOT NULL, "created_at" REAL NOT NULL,
            "updated_at" REAL NOT NULL, "started_at" REAL, "ended_at" REAL,
            "total_tasks" INTEGER NOT NULL, "metadata" TEXT NOT NULL)""",
        "CREATE INDEX task_lists_created ON task_lists (created_at, list_id)",
        "CREATE INDEX task_lists_state ON task_lists (state, created_at, list_id)",
        """CREATE TABLE tasks (
            "list_id" TEXT NOT NULL, "index" INTEGER NOT NULL, "spec" TEXT NOT NULL,
            "state" TEXT NOT NULL, "timeout" REAL, "retries" INTEGER NOT NULL,
            "on_failure" TEXT NOT NULL, "depends_on" TEXT NOT NULL, "attempts" INTEGER NOT NULL,
            "execution_ids" TEXT NOT NULL, "started_at" REAL, "ended_at" REAL,
            "exit_code" INTEGER, "error" TEXT, "result" TEXT,
            PRIMARY KEY ("list_id", "index"))""",
        """CREATE TABLE hook_runs (
            "id" INTEGER PRIMARY KEY, "hook" TEXT NOT NULL, "event" TEXT NOT NULL,
            "started_at" REAL NOT NULL, "duration_s" REAL NOT NULL, "ok" INTEGER NOT NULL,
            "proceed" INTEGER NOT NULL, "message" TEXT, "error" TEXT, "execution_id" TEXT,
            "list_id" TEXT)""",
        "CREATE INDEX hook_runs_hook ON hook_runs (hook, id)",
        """CREATE TABLE durations (
            "id" INTEGER PRIMARY KEY, "category" TEXT NOT NULL, "duration_s" REAL NOT NULL,
            "recorded_at" REAL NOT NULL, "execution_id" TEXT, "predicted_timeout_s" REAL,
            "state" TEXT NOT NULL)""",
        "CREATE INDEX durations_category ON durations (category, id)",
    ),
    # 3: owners: which service instance runs an execution or a task list (crash recovery
    # only touches what a dead instance left)
    (
        'ALTER TABLE executions ADD COLUMN "owner" TEXT',
        'ALTER TABLE task_lists ADD COLUMN "owner" TEXT',
        """CREATE TABLE owners (
            "owner" TEXT PRIMARY KEY, "heartbeat" REAL NOT NULL) WITHOUT ROWID""",
    ),
)
"""Schema steps: step ``i`` moves ``user_version`` from ``i - 1`` to ``i``. Append only."""

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, *, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing steps up to ``target``, each in its own transaction; return the version.

    A file written by a newer cc-executor (a higher ``user_version``) is refused, not downgraded.
    """
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        raise ServiceError(
            "the store was written by a newer cc-executor", version=current, known=SCHEMA_VERSION
        )
    for version in range(current + 1, target + 1):
        with _transaction(conn):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version:d}")
        logger.info("sqlite store migrated to schema {}", version)
    return max(current, target)


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _columns(shape: RecordShape[Any]) -> str:
    return ", ".join(f'"{name}"' for name in shape.names)


@functools.lru_cache(maxsize=64)
def _upsert_sql(table: str, shape: RecordShape[Any], rows: int = 1) -> str:
    marks = "(" + ", ".join("?" for _ in shape.names) + ")"
    return f"INSERT OR REPLACE INTO {table} ({_columns(shape)}) VALUES " + ", ".join([marks] * rows)


def _upsert_rows(
    conn: sqlite3.Connection, table: str, shape: RecordShape[Any], rows: list[tuple[object, ...]]
) -> None:
    """Upsert ``rows`` in one transaction, ``INSERT_ROWS`` per statement (see _append_events)."""
    with _transaction(conn):
        for start in range(0, len(rows), INSERT_ROWS):
            chunk = rows[start : start + INSERT_ROWS]
            conn.execute(_upsert_sql(table, shape, len(chunk)), [v for row in chunk for v in row])


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


_FINISHED_EXECUTIONS = tuple(sorted(FINISHED_EXECUTION_STATES))
_FINISHED_LISTS = tuple(sorted(FINISHED_TASK_LIST_STATES))


class SqliteStore:
    """:class:`~cc_executor.storage.base.Store` on one SQLite file (WAL)."""

    def __init__(self, path: Path, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._wal_bytes = 0  # written since a checkpoint was last asked for (writer thread only)
        self._written = 0  # bytes written in all (writer thread only)
        self._folded = 0  # of them, what the latest finished checkpoint saw (set by it)
        self._checkpoint_timer: asyncio.TimerHandle | None = None
        self._checkpointer: ThreadPoolExecutor | None = None
        self._cconn: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()  # one checkpoint at a time, on any connection
        self._checkpoint_queued = False  # one queued on the checkpointer (guarded by the lock)
        self.checkpoints = 0  # checkpoints run (for tests and the benchmark)

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._writer is not None:
            return
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="cc-executor-sqlite-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="cc-executor-sqlite-reader")
        self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="cc-executor-sqlite-ckpt")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer, self._open_writer)
            await loop.run_in_executor(self._reader, self._open_reader)
            await loop.run_in_executor(self._checkpointer, self._open_checkpointer)
        except (OSError, sqlite3.Error) as exc:
            await self.close()
            raise ServiceError(f"cannot open the store: {exc}", path=str(self.path)) from exc
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._checkpoint_timer is not None:
            self._checkpoint_timer.cancel()
            self._checkpoint_timer = None
        writer, reader, checkpointer = self._writer, self._reader, self._checkpointer
        self._writer = self._reader = self._checkpointer = None
        loop = asyncio.get_running_loop()
        if checkpointer is not None:
            # A checkpoint under way finishes first; the writer's close folds in the rest.
            await loop.run_in_executor(checkpointer, self._close_checkpointer)
            checkpointer.shutdown(wait=False)
        if writer is not None:
            # Queued behind every write already submitted, so those are committed first.
            await loop.run_in_executor(writer, self._close_writer)
            writer.shutdown(wait=False)
        if reader is not None:
            await loop.run_in_executor(reader, self._close_reader)
            reader.shutdown(wait=False)

    def _open_writer(self) -> None:
        self.path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        os.close(fd)
        if self.path.stat().st_mode & 0o777 != FILE_MODE:
            os.chmod(self.path, FILE_MODE)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            # page_size and auto_vacuum only take effect on a file without tables, so they are
            # set before the first migration and are no-ops afterwards; prune then returns
            # freed pages.
            conn.execute(f"PRAGMA page_size = {PAGE_BYTES:d}")
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES:d}")
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # see CHECKPOINT_IDLE_S
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._wconn = conn

    def _open_reader(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute("PRAGMA query_only = ON")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        self._rconn = conn

    def _close_writer(self) -> None:
        if self._wconn is not None:
            try:
                self._checkpoint()  # the WAL is folded in now, not by the next start
                conn, self._wconn = self._wconn, None
                # optimize may ANALYZE the events table; the limit keeps that to a sample
                # instead of a read of every event at shutdown.
                conn.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT_ROWS:d}")
                conn.execute("PRAGMA optimize")
            finally:
                conn.close()

    def _open_checkpointer(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        self._cconn = conn

    def _close_checkpointer(self) -> None:
        if self._cconn is not None:
            conn, self._cconn = self._cconn, None
            conn.close()

    def _close_reader(self) -> None:
        if self._rconn is not None:
            conn, self._rconn = self._rconn, None
            conn.close()

    async def _write(
        self, fn: Callable[[sqlite3.Connection], T], wal_bytes: int = WRITE_WAL_BYTES
    ) -> T:
        """Run ``fn`` on the writer thread with the writer connection, in call order.

        ``wal_bytes``: about what it adds to the WAL; past CHECKPOINT_WAL_BYTES since the last
        checkpoint, the writer checkpoints right after it. Otherwise one runs once writes pause.
        """
        if self._writer is None:
            raise ServiceError("the store is not open", path=str(self.path))

        def run() -> T:
            assert self._wconn is not None
            result = fn(self._wconn)
            self._wal_bytes += wal_bytes
            self._written += wal_bytes
            if self._written - self._folded >= CHECKPOINT_BACKSTOP_BYTES:
                self._checkpoint(self._wconn)  # the checkpointer cannot keep up: do it here
            elif self._wal_bytes >= CHECKPOINT_WAL_BYTES:
                self._wal_bytes = 0
                self._checkpoint_elsewhere()
            return result

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._writer, run)
        finally:
            if self._checkpoint_timer is not None:
                self._checkpoint_timer.cancel()
            self._checkpoint_timer = loop.call_later(CHECKPOINT_IDLE_S, self._checkpoint_idle)

    def _checkpoint_idle(self) -> None:
        """Writes paused: checkpoint (on the checkpointer thread)."""
        self._checkpoint_timer = None
        if self._written != self._folded:
            self._checkpoint_elsewhere()

    def _checkpoint_elsewhere(self) -> None:
        """Queue one checkpoint on the checkpointer thread (none if one is queued already).
        Thread-safe: the writer thread and the loop both ask."""
        checkpointer = self._checkpointer
        if checkpointer is None:
            return
        with self._checkpoint_lock:
            if self._checkpoint_queued:
                return
            self._checkpoint_queued = True
        checkpointer.submit(self._checkpoint_queued_run)

    def _checkpoint_queued_run(self) -> None:
        with self._checkpoint_lock:
            self._checkpoint_queued = False
        if self._cconn is not None:
            self._checkpoint(self._cconn)

    def _checkpoint(self, conn: sqlite3.Connection | None = None) -> None:
        """Copy the WAL into the database file. PASSIVE: never waits for a reader or the
        writer; frames committed meanwhile (or a reader still needs) wait for the next one."""
        conn = conn if conn is not None else self._wconn
        if conn is None:
            return
        with self._checkpoint_lock:
            # What was written before it began (what is written during the copy may not be in
            # it). An int read and an int write: no lock needed against the writer thread.
            seen = self._written
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # best effort: the WAL stays valid, the next one retries
                logger.warning("sqlite checkpoint failed: {}", exc)
                return
            self._folded = seen
            self.checkpoints += 1

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the reader thread with the read-only connection."""
        if self._reader is None:
            raise ServiceError("the store is not open", path=str(self.path))

        def run() -> T:
            assert self._rconn is not None
            return fn(self._rconn)

        return await asyncio.get_running_loop().run_in_executor(self._reader, run)

    # --- owners ------------------------------------------------------------------------------

    async def heartbeat(self, owner: str, at: float) -> None:
        sql = 'INSERT OR REPLACE INTO owners ("owner", "heartbeat") VALUES (?, ?)'
        await self._write(lambda c: _execute(c, sql, (owner, at)))

    async def owner_heartbeats(self) -> dict[str, float]:
        rows = await self._read(
            lambda c: c.execute("SELECT owner, heartbeat FROM owners").fetchall()
        )
        return {str(owner): float(at) for owner, at in rows}

    async def forget_owner(self, owner: str) -> None:
        await self._write(lambda c: _execute(c, "DELETE FROM owners WHERE owner = ?", (owner,)))

    # --- executions --------------------------------------------------------------------------

    async def put_execution(self, record: ExecutionRecord) -> None:
        await self.put_executions([record])

    async def put_executions(self, records: Sequence[ExecutionRecord]) -> None:
        """One writer job and one transaction for all of them: a burst of 200 starts was 200
        round trips to the writer thread, each fighting the busy loop for the GIL."""
        if records:
            rows = [EXECUTIONS.to_row(record) for record in records]
            await self._write(lambda c: _upsert_rows(c, "executions", EXECUTIONS, rows))

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        sql = f"SELECT {_columns(EXECUTIONS)} FROM executions WHERE execution_id = ?"
        row = await self._read(lambda c: c.execute(sql, (execution_id,)).fetchone())
        return None if row is None else EXECUTIONS.from_row(row)

    async def list_executions(
        self,
        *,
        states: Sequence[str] | None = None,
        limit: int = 100,
        before: float | None = None,
        since: float | None = None,
        task_list_id: str | None = None,
    ) -> list[ExecutionRecord]:
        if limit <= 0 or (states is not None and not states):
            return []
        where: list[str] = []
        params: list[object] = []
        if states is not None:
            where.append(f"state IN ({_marks(states)})")
            params.extend(states)
        if before is not None:
            where.append("created_at < ?")
            params.append(before)
        if since is not None:
            where.append("created_at >= ?")
            params.append(since)
        if task_list_id is not None:
            where.append("task_list_id = ?")
            params.append(task_list_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = (
            f"SELECT {_columns(EXECUTIONS)} FROM executions {clause}"
            " ORDER BY created_at DESC, execution_id DESC LIMIT ?"
        )
        params.append(limit)
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        return [EXECUTIONS.from_row(r) for r in rows]

    async def count_executions(self, *, states: Sequence[str] | None = None) -> int:
        if states is not None and not states:
            return 0
        sql, params = "SELECT COUNT(*) FROM executions", tuple(states or ())
        if states is not None:
            sql += f" WHERE state IN ({_marks(states)})"
        row = await self._read(lambda c: c.execute(sql, params).fetchone())
        return int(row[0])

    # --- events ------------------------------------------------------------------------------

    async def append_events(self, events: Sequence[StoredEvent]) -> None:
        if events:
            batch = list(events)
            size = sum(len(e.frame) for e in batch) + WRITE_WAL_BYTES
            await self._write(lambda c: _append_events(c, batch), size)

    async def read_events(
        self, execution_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[StoredEvent]:
        if limit <= 0:
            return []
        sql = (
            "SELECT seq, method, frame FROM events WHERE execution_id = ? AND seq > ?"
            " ORDER BY seq LIMIT ?"
        )
        rows = await self._read(
            lambda c: c.execute(sql, (execution_id, after_seq, limit)).fetchall()
        )
        return [StoredEvent(execution_id, seq, method, frame) for seq, method, frame in rows]

    async def last_event_seq(self, execution_id: str) -> int:
        sql = "SELECT MAX(seq) FROM events WHERE execution_id = ?"
        row = await self._read(lambda c: c.execute(sql, (execution_id,)).fetchone())
        return 0 if row[0] is None else int(row[0])

    # --- task lists --------------------------------------------------------------------------

    async def put_task_list(self, record: TaskListRecord) -> None:
        sql, row = _upsert_sql("task_lists", TASK_LISTS), TASK_LISTS.to_row(record)
        await self._write(lambda c: _execute(c, sql, row))

    async def claim_task_list(
        self, list_id: str, *, expected_owner: str | None, owner: str, at: float
    ) -> bool:
        sql = (
            'UPDATE task_lists SET "owner" = ?, "updated_at" = ? '
            'WHERE "list_id" = ? AND "owner" IS ?'
        )

        def claim(conn: sqlite3.Connection) -> bool:
            return conn.execute(sql, (owner, at, list_id, expected_owner)).rowcount == 1

        return await self._write(claim)

    async def get_task_list(self, list_id: str) -> TaskListRecord | None:
        sql = f"SELECT {_columns(TASK_LISTS)} FROM task_lists WHERE list_id = ?"
        row = await self._read(lambda c: c.execute(sql, (list_id,)).fetchone())
        return None if row is None else TASK_LISTS.from_row(row)

    async def list_task_lists(
        self, *, states: Sequence[str] | None = None, limit: int = 100
    ) -> list[TaskListRecord]:
        if limit <= 0 or (states is not None and not states):
            return []
        clause, params = "", [*(states or ()), limit]
        if states is not None:
            clause = f"WHERE state IN ({_marks(states)})"
        sql = (
            f"SELECT {_columns(TASK_LISTS)} FROM task_lists {clause}"
            " ORDER BY created_at DESC, list_id DESC LIMIT ?"
        )
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        return [TASK_LISTS.from_row(r) for r in rows]

    async def put_task(self, record: TaskRecord) -> None:
        sql, row = _upsert_sql("tasks", TASKS), TASKS.to_row(record)
        await self._write(lambda c: _execute(c, sql, row))

    async def get_tasks(self, list_id: str) -> list[TaskRecord]:
        sql = f'SELECT {_columns(TASKS)} FROM tasks WHERE list_id = ? ORDER BY "index"'
        rows = await self._read(lambda c: c.execute(sql, (list_id,)).fetchall())
        return [TASKS.from_row(r) for r in rows]

    # --- hooks and statistics ----------------------------------------------------------------

    async def add_hook_run(self, record: HookRunRecord) -> None:
        row = HOOK_RUNS.to_row(record)
        await self._write(lambda c: _add_hook_run(c, row))

    async def list_hook_runs(
        self, *, hook: str | None = None, limit: int = 50
    ) -> list[HookRunRecord]:
        if limit <= 0:
            return []
        where, params = ("", (limit,)) if hook is None else ("WHERE hook = ?", (hook, limit))
        sql = f"SELECT {_columns(HOOK_RUNS)} FROM hook_runs {where} ORDER BY id DESC LIMIT ?"
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        return [HOOK_RUNS.from_row(r) for r in rows]

    async def add_duration(self, sample: DurationSample) -> None:
        row = DURATIONS.to_row(sample)
        await self._write(lambda c: _add_duration(c, sample.category, row))

    async def durations(
        self, category: str | None = None, *, limit: int = 200
    ) -> list[DurationSample]:
        if limit <= 0:
            return []
        where, params = (
            ("", (limit,)) if category is None else ("WHERE category = ?", (category, limit))
        )
        sql = f"SELECT {_columns(DURATIONS)} FROM durations {where} ORDER BY id DESC LIMIT ?"
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        return [DURATIONS.from_row(r) for r in rows]

    # --- retention ---------------------------------------------------------------------------

    async def prune(
        self,
        *,
        older_than_s: float | None = None,
        keep_last: int | None = None,
        max_event_bytes: int | None = None,
    ) -> PruneReport:
        now = time.time()
        report = await self._write(
            lambda c: _prune(c, now, older_than_s, keep_last, max_event_bytes)
        )
        if report.executions or report.task_lists:
            logger.info(
                "pruned {} executions ({} events) and {} task lists",
                report.executions,
                report.events,
                report.task_lists,
            )
        return report


# --- writer-thread work ------------------------------------------------------------------------


def _execute(conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> None:
    conn.execute(sql, params)  # autocommit: one statement, one transaction


@functools.lru_cache(maxsize=16)
def _insert_events(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?)"] * rows)
    return f"INSERT OR IGNORE INTO events (execution_id, seq, method, frame) VALUES {values}"


def _append_events(conn: sqlite3.Connection, events: list[StoredEvent]) -> None:
    by_execution: dict[str, dict[int, StoredEvent]] = {}
    for event in events:
        by_execution.setdefault(event.execution_id, {}).setdefault(event.seq, event)
    existing_sql = "SELECT seq FROM events WHERE execution_id = ? AND seq BETWEEN ? AND ?"
    totals = (
        "INSERT INTO event_totals (execution_id, events, bytes) VALUES (?, ?, ?)"
        " ON CONFLICT (execution_id) DO UPDATE SET"
        " events = events + excluded.events, bytes = bytes + excluded.bytes"
    )
    with _transaction(conn):
        for execution_id, by_seq in by_execution.items():
            # Only a retried batch overlaps what is stored; finding the overlap is one index
            # range read, and it keeps event_totals exact without a trigger per row.
            seqs = by_seq.keys()
            existing = {
                seq for (seq,) in conn.execute(existing_sql, (execution_id, min(seqs), max(seqs)))
            }
            fresh = [e for seq, e in by_seq.items() if seq not in existing]
            if not fresh:
                continue
            # One multi-row INSERT per slice instead of executemany: each statement step
            # releases the GIL, and getting it back from a busy event loop can take a whole
            # switch interval (5 ms), so one step per row starved this thread while output
            # streamed (docs/benchmarks.md, round 9).
            for start in range(0, len(fresh), INSERT_ROWS):
                rows = fresh[start : start + INSERT_ROWS]
                params = [v for e in rows for v in (e.execution_id, e.seq, e.method, e.frame)]
                conn.execute(_insert_events(len(rows)), params)
            size = sum(frame_bytes(e.frame) for e in fresh)
            conn.execute(totals, (execution_id, len(fresh), size))


def _add_hook_run(conn: sqlite3.Connection, row: tuple[object, ...]) -> None:
    cols = _columns(HOOK_RUNS)
    with _transaction(conn):
        cursor = conn.execute(f"INSERT INTO hook_runs ({cols}) VALUES ({_marks(row)})", row)
        newest = int(cursor.lastrowid or 0)
        conn.execute("DELETE FROM hook_runs WHERE id <= ?", (newest - HOOK_RUNS_KEPT,))


def _add_duration(conn: sqlite3.Connection, category: str, row: tuple[object, ...]) -> None:
    cols = _columns(DURATIONS)
    with _transaction(conn):
        conn.execute(f"INSERT INTO durations ({cols}) VALUES ({_marks(row)})", row)
        conn.execute(
            "DELETE FROM durations WHERE category = ? AND id <= (SELECT id FROM durations"
            " WHERE category = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (category, category, DURATIONS_KEPT_PER_CATEGORY),
        )


def _prune_candidates(
    conn: sqlite3.Connection,
    *,
    table: str,
    key: str,
    finished: tuple[str, ...],
    cutoff: float | None,
    keep_last: int | None,
) -> dict[str, None]:
    """Finished rows to delete by age or by rank, oldest first (an insertion-ordered set)."""
    victims: dict[str, None] = {}
    states = f"state IN ({_marks(finished)})"
    order = f"ORDER BY created_at, {key}"
    if cutoff is not None:
        sql = f"SELECT {key} FROM {table} WHERE {states} AND created_at < ? {order}"
        victims.update((k, None) for (k,) in conn.execute(sql, (*finished, cutoff)))
    if keep_last is not None:
        sql = (
            f"SELECT {key} FROM {table} WHERE {states} AND {key} NOT IN (SELECT {key} FROM"
            f" {table} ORDER BY created_at DESC, {key} DESC LIMIT ?) {order}"
        )
        victims.update((k, None) for (k,) in conn.execute(sql, (*finished, max(keep_last, 0))))
    return victims


def _prune(
    conn: sqlite3.Connection,
    now: float,
    older_than_s: float | None,
    keep_last: int | None,
    max_event_bytes: int | None,
) -> PruneReport:
    cutoff = None if older_than_s is None else now - older_than_s
    with _transaction(conn):
        victims = _prune_candidates(
            conn,
            table="executions",
            key="execution_id",
            finished=_FINISHED_EXECUTIONS,
            cutoff=cutoff,
            keep_last=keep_last,
        )
        sizes: dict[str, tuple[int, int]] = {
            eid: (events, size)
            for eid, events, size in conn.execute(
                "SELECT execution_id, events, bytes FROM event_totals"
            )
        }
        if max_event_bytes is not None:
            total = sum(size for eid, (_, size) in sizes.items() if eid not in victims)
            sql = (
                f"SELECT execution_id FROM executions WHERE state IN"
                f" ({_marks(_FINISHED_EXECUTIONS)}) ORDER BY created_at, execution_id"
            )
            for (eid,) in conn.execute(sql, _FINISHED_EXECUTIONS).fetchall():
                if total <= max_event_bytes:
                    break
                if eid not in victims and eid in sizes:
                    victims[eid] = None
                    total -= sizes[eid][1]
        ids = [(eid,) for eid in victims]
        conn.executemany("DELETE FROM events WHERE execution_id = ?", ids)
        conn.executemany("DELETE FROM event_totals WHERE execution_id = ?", ids)
        conn.executemany("DELETE FROM executions WHERE execution_id = ?", ids)
        lists = _prune_candidates(
            conn,
            table="task_lists",
            key="list_id",
            finished=_FINISHED_LISTS,
            cutoff=cutoff,
            keep_last=keep_last,
        )
        list_ids = [(lid,) for lid in lists]
        conn.executemany("DELETE FROM tasks WHERE list_id = ?", list_ids)
        conn.executemany("DELETE FROM task_lists WHERE list_id = ?", list_ids)
    if victims or lists:
        # executescript steps the pragma to the end; execute() would free a single page.
        conn.executescript("PRAGMA incremental_vacuum")
    return PruneReport(
        executions=len(victims),
        events=sum(sizes.get(eid, (0, 0))[0] for eid in victims),
        task_lists=len(lists),
    )
