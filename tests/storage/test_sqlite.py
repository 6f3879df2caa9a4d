"""SQLite specifics: migrations, file mode, PRAGMAs, reads during a write, index use."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.polling import poll_until

from cc_executor.errors import ServiceError
from cc_executor.storage import ExecutionRecord, StoredEvent, TaskListRecord
from cc_executor.storage import sqlite as sqlite_module
from cc_executor.storage._records import DURATIONS, EXECUTIONS, HOOK_RUNS, TASK_LISTS, TASKS
from cc_executor.storage.sqlite import (
    MIGRATIONS,
    PAGE_BYTES,
    SCHEMA_VERSION,
    SqliteStore,
    migrate,
)

WAIT_S = 10.0  # bound on every cross-thread handshake below; never reached when things work


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "cc-executor.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def columns(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    return tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))


def test_schema_columns_match_the_records(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "schema.db", isolation_level=None)
    migrate(conn)
    assert columns(conn, "executions") == EXECUTIONS.names
    assert columns(conn, "task_lists") == TASK_LISTS.names
    assert columns(conn, "tasks") == TASKS.names
    assert columns(conn, "hook_runs") == ("id", *HOOK_RUNS.names)
    assert columns(conn, "durations") == ("id", *DURATIONS.names)
    conn.close()


async def test_migrates_an_older_file_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    record = ExecutionRecord("kept", "completed", "true", created_at=1.0)
    # Step 1's columns: every field but those later steps added (owner, step 3).
    v1 = [name for name in EXECUTIONS.names if name != "owner"]
    row = dict(zip(EXECUTIONS.names, EXECUTIONS.to_row(record), strict=True))
    conn.execute(
        f"INSERT INTO executions ({', '.join(v1)}) VALUES ({', '.join('?' for _ in v1)})",
        [row[name] for name in v1],
    )
    conn.close()

    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.get_execution("kept") == record
        await store.put_task_list(TaskListRecord("L", created_at=2.0))  # a table from step 2
        assert [t.list_id for t in await store.list_task_lists()] == ["L"]
        version = await store._read(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
        assert version == SCHEMA_VERSION == len(MIGRATIONS)
    finally:
        await store.close()


async def test_refuses_a_file_from_a_newer_version(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store = SqliteStore(path)
    with pytest.raises(ServiceError, match="newer"):
        await store.open()
    await store.close()


async def test_an_unopenable_path_is_a_service_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ServiceError, match="cannot open"):
        await SqliteStore(blocker / "sub" / "x.db").open()


async def test_file_is_private_even_when_it_existed(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    store = SqliteStore(state_dir / "cc-executor.db")
    await store.open()
    await store.put_execution(ExecutionRecord("e", "running", "true"))
    for name in ("cc-executor.db", "cc-executor.db-wal"):
        assert stat.S_IMODE((state_dir / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    await store.close()

    loose = tmp_path / "loose.db"
    loose.touch(mode=0o644)
    loose.chmod(0o644)
    store = SqliteStore(loose)
    await store.open()
    await store.close()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


@pytest.mark.parametrize(("setting", "value"), [("NORMAL", 1), ("FULL", 2)])
async def test_synchronous_setting_and_wal_are_applied(
    tmp_path: Path, setting: str, value: int
) -> None:
    store = SqliteStore(tmp_path / "s.db", synchronous=setting)  # type: ignore[arg-type]
    await store.open()
    try:
        assert await store._write(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == value
        mode = await store._write(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        assert mode == "wal"
        vacuum = await store._write(lambda c: c.execute("PRAGMA auto_vacuum").fetchone()[0])
        assert vacuum == 2  # incremental
        page = await store._write(lambda c: c.execute("PRAGMA page_size").fetchone()[0])
        assert page == PAGE_BYTES
    finally:
        await store.close()


async def test_a_file_with_smaller_pages_keeps_them_and_its_data(tmp_path: Path) -> None:
    # Stores created before round 12 have 4 KiB pages; they open, read and write as before.
    path = tmp_path / "small-pages.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn)
    conn.close()
    store = SqliteStore(path)
    await store.open()
    try:
        record = ExecutionRecord("e", "completed", "true", created_at=1.0)
        await store.put_execution(record)
        await store.append_events(_output("e", 1, 3, 10_000))
        assert await store.get_execution("e") == record
        assert [e.seq for e in await store.read_events("e")] == [1, 2, 3]
        page = await store._write(lambda c: c.execute("PRAGMA page_size").fetchone()[0])
        assert page == 4096
    finally:
        await store.close()


def _output(execution_id: str, first_seq: int, count: int, size: int) -> list[StoredEvent]:
    return [
        StoredEvent(execution_id, seq, "process.output", '{"data":"' + "x" * size + '"}')
        for seq in range(first_seq, first_seq + count)
    ]


async def test_checkpoints_wait_for_writes_to_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_IDLE_S", 0.05)
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    await store.open()
    try:
        # No commit checkpoints on its own: a streaming write never pays for one.
        assert (
            await store._write(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 0
        )
        size_before = path.stat().st_size
        await store.append_events(_output("e1", 1, 64, 16 * 1024))  # 1 MiB
        assert store.checkpoints == 0
        await poll_until(lambda: store.checkpoints == 1, timeout=WAIT_S, what="idle checkpoint")
        assert path.stat().st_size >= size_before + 1024 * 1024  # the WAL is in the file now
        assert len(await store.read_events("e1", limit=100)) == 64
    finally:
        await store.close()


async def test_a_stream_that_never_pauses_still_bounds_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past CHECKPOINT_WAL_BYTES the checkpoint runs on its own thread: the writer does not
    # wait for it, and the WAL restarts from its beginning once a checkpoint has caught up.
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_IDLE_S", 3600.0)
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_WAL_BYTES", 256 * 1024)
    path = tmp_path / "s.db"
    wal = path.with_name(path.name + "-wal")
    store = SqliteStore(path)
    await store.open()
    try:
        sizes = []
        for batch in range(4):
            await store.append_events(_output("e1", 1 + batch * 16, 16, 16 * 1024))
            await poll_until(
                lambda b=batch: store.checkpoints == b + 1,
                timeout=WAIT_S,
                what="a checkpoint after each 256 KiB",
            )
            sizes.append(wal.stat().st_size)
        # Each batch starts the WAL from its beginning again: it stopped growing.
        assert max(sizes[2:]) <= max(sizes[:2])
    finally:
        await store.close()
    # Closing folds in the rest: another process opening the file needs no WAL.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 64
    finally:
        conn.close()


async def test_the_writer_checkpoints_itself_when_the_checkpointer_falls_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_IDLE_S", 3600.0)
    store = SqliteStore(tmp_path / "s.db")
    monkeypatch.setattr(store, "_checkpoint_elsewhere", lambda: None)  # it never gets to run
    await store.open()
    # What a batch below counts as, from what opening wrote (it is not folded in either).
    batch = sum(len(e.frame) for e in _output("e1", 1, 16, 16 * 1024))
    batch += sqlite_module.WRITE_WAL_BYTES
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_WAL_BYTES", batch)
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_BACKSTOP_BYTES", store._written + 2 * batch)
    try:
        await store.append_events(_output("e1", 1, 16, 16 * 1024))  # one batch: asks, nothing
        assert store.checkpoints == 0
        await store.append_events(_output("e1", 17, 16, 16 * 1024))  # two batches unfolded
        assert store.checkpoints == 1  # by the writer, right after that write
        assert len(await store.read_events("e1", limit=100)) == 32
    finally:
        await store.close()


def test_unknown_synchronous_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NORMAL or FULL"):
        SqliteStore(tmp_path / "x.db", synchronous="OFF")  # type: ignore[arg-type]


async def test_reads_run_while_a_big_write_is_open(sqlite_store: SqliteStore) -> None:
    await sqlite_store.put_execution(ExecutionRecord("done", "completed", "true", created_at=1.0))
    await sqlite_store.append_events([StoredEvent("done", 1, "m", "before")])
    in_transaction, release = threading.Event(), threading.Event()
    frame = "z" * (64 * 1024)

    def big_write(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO events (execution_id, seq, method, frame) VALUES (?, ?, 'm', ?)",
            [("big", seq, frame) for seq in range(1, 321)],  # 20 MiB, uncommitted
        )
        in_transaction.set()
        released = release.wait(WAIT_S)
        conn.execute("COMMIT" if released else "ROLLBACK")

    writing = asyncio.ensure_future(sqlite_store._write(big_write))
    try:
        assert await asyncio.to_thread(in_transaction.wait, WAIT_S)
        # The writer thread is inside its transaction; reads answer from the last commit.
        got = await asyncio.wait_for(sqlite_store.get_execution("done"), WAIT_S)
        assert got is not None
        assert [e.frame for e in await sqlite_store.read_events("done")] == ["before"]
        assert await sqlite_store.last_event_seq("big") == 0
    finally:
        release.set()
        await writing
    assert await sqlite_store.last_event_seq("big") == 320


async def test_queries_are_index_lookups(sqlite_store: SqliteStore) -> None:
    statements: list[str] = []
    await sqlite_store._read(lambda c: c.set_trace_callback(statements.append))
    await sqlite_store.list_executions(states=["running", "paused", "pending", "waiting_for_limit"])
    await sqlite_store.list_executions(task_list_id="L")
    await sqlite_store.count_executions(states=["running"])
    await sqlite_store.read_events("e", after_seq=10, limit=100)
    await sqlite_store.last_event_seq("e")
    await sqlite_store.list_task_lists(states=["running", "queued"])
    await sqlite_store.get_tasks("L")
    await sqlite_store.list_hook_runs(hook="h")
    await sqlite_store.durations("c")
    await sqlite_store._read(lambda c: c.set_trace_callback(None))
    assert len(statements) == 9

    def plans(conn: sqlite3.Connection) -> list[str]:
        return [
            " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in statements
        ]

    for sql, plan in zip(statements, await sqlite_store._read(plans), strict=True):
        assert "SCAN" not in plan.replace("SCAN CONSTANT ROW", ""), (sql, plan)
        assert "USING" in plan, (sql, plan)


async def test_prune_returns_freed_pages(sqlite_store: SqliteStore) -> None:
    frame = "p" * (64 * 1024)
    await sqlite_store.put_execution(ExecutionRecord("big", "completed", "true", created_at=1.0))
    await sqlite_store.append_events([StoredEvent("big", s, "m", frame) for s in range(1, 161)])

    def pages(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])

    before = await sqlite_store._write(pages)
    assert (await sqlite_store.prune(keep_last=0)).events == 160
    assert await sqlite_store._write(pages) < before // 4
