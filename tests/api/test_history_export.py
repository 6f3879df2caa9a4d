"""export_execution_history on the durable store: round trips, filters, and refused paths."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from tests.redis_keys import REDIS_URL, keys_under

from cc_executor.api import export_execution_history
from cc_executor.api.history import read_export, record_from_info
from cc_executor.config import Settings
from cc_executor.errors import InvalidParams
from cc_executor.scheduler.service import record_info
from cc_executor.storage import ExecutionRecord, Store, open_store
from cc_executor.storage import export as export_module
from cc_executor.storage.export import collect_executions, format_export, parse_export

BASE = 1_700_000_000.0


def sample_records() -> list[ExecutionRecord]:
    """Every field kind, awkward text (commas, quotes, newlines, non-ASCII), nulls and not."""
    return [
        ExecutionRecord(
            execution_id="exec-agent",
            state="completed",
            command='claude -p "Write, then \\"test\\"\nit" ünïcødé',
            argv=["claude", "-p", "x, y"],
            cwd="/work/project",
            agent="claude",
            metadata={"category": "claude:code:low", "nested": {"k": [1, 2.5, None]}},
            pid=4242,
            pgid=4242,
            exit_code=0,
            created_at=BASE + 30.125,
            started_at=BASE + 30.5,
            ended_at=BASE + 95.75,
            execution_time=65.25,
            last_seq=17,
            attempt=1,
            task_list_id="list-1",
            task_index=0,
            timeout=300.0,
            timeout_predicted=True,
            category="claude:code:low",
            result={
                "text": "done",
                "total_cost_usd": 0.0123,
                "usage": {"input_tokens": 10, "output_tokens": 20},
            },
            output_bytes=2048,
        ),
        ExecutionRecord(
            execution_id="exec-failed",
            state="failed",
            command="make test",
            argv=["/bin/sh", "-c", "make test"],
            exit_code=2,
            reason="exit",
            created_at=BASE + 20.0,
            started_at=BASE + 20.1,
            ended_at=BASE + 21.0,
            execution_time=0.9,
            last_seq=3,
        ),
        ExecutionRecord(
            execution_id="exec-timeout",
            state="timeout",
            command="sleep 100",
            signal="SIGKILL",
            reason="timeout",
            created_at=BASE + 10.0,
            execution_time=5.0,
            timeout=5.0,
        ),
        ExecutionRecord(execution_id="exec-lost", state="lost", command="true", created_at=BASE),
    ]


async def seed(store: Store, records: list[ExecutionRecord]) -> None:
    await store.open()
    try:
        for record in records:
            await store.put_execution(record)
    finally:
        await store.close()


@pytest.fixture
async def seeded(settings: Settings) -> list[ExecutionRecord]:
    records = sample_records()
    await seed(open_store(settings), records)
    return records  # newest first, as exports list them


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("format", ["json", "csv"])
async def test_file_round_trip(
    format: str, settings: Settings, seeded: list[ExecutionRecord], export_dir: Path
) -> None:
    written = await export_execution_history(
        format,  # type: ignore[arg-type]
        f"history.{format}",
        export_dir=export_dir,
        settings=settings,
    )
    assert written == export_dir / f"history.{format}"
    assert read_export(written) == seeded
    assert sorted(os.listdir(export_dir)) == [written.name]  # no temporary left behind


@pytest.mark.parametrize("format", ["json", "csv"])
async def test_text_round_trip_and_the_earlier_call_form(
    format: str, settings: Settings, seeded: list[ExecutionRecord]
) -> None:
    text = await export_execution_history(format, limit=2, settings=settings)  # type: ignore[arg-type]
    assert parse_export(text, format) == seeded[:2]  # type: ignore[arg-type]


def test_csv_header_is_every_record_field() -> None:
    text = format_export(sample_records(), "csv")
    header = text.splitlines()[0].split(",")
    assert header == list(export_module.EXPORT_COLUMNS)
    assert "execution_id" in header
    assert "timeout_predicted" in header
    assert parse_export(format_export([], "csv"), "csv") == []
    assert parse_export(format_export([], "json"), "json") == []


async def test_filters(settings: Settings, seeded: list[ExecutionRecord], export_dir: Path) -> None:
    async def ids(**filters: object) -> list[str]:
        path = await export_execution_history(
            "json",
            "f.json",
            export_dir=export_dir,
            settings=settings,
            **filters,  # type: ignore[arg-type]
        )
        return [r.execution_id for r in read_export(path)]

    assert await ids(status="failed") == ["exec-failed"]
    assert await ids(status=["timeout", "lost"]) == ["exec-timeout", "exec-lost"]
    assert await ids(since=BASE + 15) == ["exec-agent", "exec-failed"]
    assert await ids(since="2023-11-14T22:13:35+00:00") == ["exec-agent", "exec-failed"]
    assert await ids(limit=1) == ["exec-agent"]
    assert await ids(status="completed", since=BASE + 31) == []


async def test_dotdot_is_refused(
    settings: Settings, seeded: list[ExecutionRecord], export_dir: Path
) -> None:
    with pytest.raises(InvalidParams, match="outside the export directory") as caught:
        await export_execution_history(
            "json", "../escape.json", export_dir=export_dir, settings=settings
        )
    assert caught.value.data["path"] == "../escape.json"
    assert not (export_dir.parent / "escape.json").exists()
    with pytest.raises(InvalidParams, match="outside"):
        await export_execution_history(
            "csv", export_dir.parent / "abs.csv", export_dir=export_dir, settings=settings
        )
    inside = await export_execution_history(
        "json", "sub/../ok.json", export_dir=export_dir, settings=settings
    )
    assert inside == export_dir / "ok.json"


async def test_symlinks_escaping_are_refused(
    settings: Settings, seeded: list[ExecutionRecord], export_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (export_dir / "linked-dir").symlink_to(outside, target_is_directory=True)
    (export_dir / "linked-file.json").symlink_to(outside / "victim.json")
    for name in ("linked-dir/out.json", "linked-file.json"):
        with pytest.raises(InvalidParams, match="outside the export directory"):
            await export_execution_history("json", name, export_dir=export_dir, settings=settings)
    assert list(outside.iterdir()) == []


async def test_default_base_is_the_current_directory(
    settings: Settings,
    seeded: list[ExecutionRecord],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    written = await export_execution_history("csv", "here.csv", settings=settings)
    assert written == work / "here.csv"
    with pytest.raises(InvalidParams, match="outside"):
        await export_execution_history("csv", str(tmp_path / "there.csv"), settings=settings)


async def test_bad_arguments(settings: Settings, export_dir: Path) -> None:
    with pytest.raises(InvalidParams, match="format"):
        await export_execution_history("xml", settings=settings)  # type: ignore[call-overload]
    with pytest.raises(InvalidParams, match="limit="):
        await export_execution_history("json", 10, settings=settings)  # type: ignore[call-overload]
    with pytest.raises(InvalidParams, match="since"):
        await export_execution_history("json", since="last tuesday", settings=settings)
    with pytest.raises(InvalidParams, match="is a directory"):
        await export_execution_history("json", ".", export_dir=export_dir, settings=settings)


async def test_paging_keeps_records_that_share_a_timestamp(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_module, "EXPORT_PAGE", 3)
    records = [
        ExecutionRecord(
            execution_id=f"e{n:02d}", state="completed", command="x", created_at=BASE + n // 4
        )
        for n in range(14)
    ]
    store = open_store(settings)
    await seed(store, records)
    await store.open()
    try:
        everything = await collect_executions(store)
        first_five = await collect_executions(store, limit=5)
    finally:
        await store.close()
    assert sorted(r.execution_id for r in everything) == sorted(r.execution_id for r in records)
    assert len(everything) == len(records)
    assert [r.created_at for r in everything] == sorted(
        (r.created_at for r in records), reverse=True
    )
    assert len(first_five) == 5


def test_record_from_a_daemon_list_row() -> None:
    record = sample_records()[0]
    back = record_from_info(record_info(record))
    assert back.execution_id == record.execution_id
    assert back.result == record.result
    assert back.category == "claude:code:low"
    assert back.metadata == record.metadata
    assert back.execution_time == record.execution_time


# --- the same round trip on the real Redis store --------------------------------------------------


@pytest.fixture
def redis_settings(tmp_path: Path) -> Iterator[Settings]:
    prefix = f"cc-executor-test:{uuid.uuid4().hex}:"
    yield Settings(
        state_dir=tmp_path / "state", store="redis", redis_url=REDIS_URL, redis_prefix=prefix
    )
    leftovers = keys_under(prefix)
    if leftovers:
        with redis.Redis.from_url(REDIS_URL) as client:
            client.delete(*leftovers)


@pytest.mark.parametrize("format", ["json", "csv"])
async def test_redis_round_trip(format: str, redis_settings: Settings, export_dir: Path) -> None:
    records = sample_records()
    await seed(open_store(redis_settings), records)
    written = await export_execution_history(
        format,
        f"redis.{format}",
        export_dir=export_dir,
        settings=redis_settings,  # type: ignore[arg-type]
    )
    assert read_export(written) == records
    failed = await export_execution_history("json", status="failed", settings=redis_settings)
    assert [r.execution_id for r in parse_export(failed, "json")] == ["exec-failed"]
