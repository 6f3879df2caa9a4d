"""Redis specifics: the key layout holds nothing stale, and connection failures are clear."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from tests.redis_keys import REDIS_URL, keys_under

from cc_executor.errors import ServiceError
from cc_executor.storage import ExecutionRecord, StoredEvent, TaskListRecord, TaskRecord
from cc_executor.storage.redis import RedisStore, _redact


@pytest.fixture
async def redis_store(redis_prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(REDIS_URL, prefix=redis_prefix)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_state_changes_leave_no_stale_index_entries(
    redis_store: RedisStore, redis_prefix: str
) -> None:
    record = ExecutionRecord("e", "running", "true", created_at=1.0, task_list_id="L1")
    await redis_store.put_execution(record)
    await redis_store.put_execution(
        ExecutionRecord("e", "completed", "true", created_at=1.0, task_list_id="L2")
    )
    assert keys_under(redis_prefix) == [
        f"{redis_prefix}exec:e",
        f"{redis_prefix}execs:all",
        f"{redis_prefix}execs:list:L2",
        f"{redis_prefix}execs:state:completed",
    ]


async def test_prune_deletes_every_key_of_what_it_prunes(
    redis_store: RedisStore, redis_prefix: str
) -> None:
    await redis_store.put_execution(
        ExecutionRecord("e", "failed", "true", created_at=1.0, task_list_id="L")
    )
    await redis_store.append_events([StoredEvent("e", s, "m", "frame") for s in range(1, 4)])
    await redis_store.put_task_list(TaskListRecord("L", state="failed", created_at=1.0))
    await redis_store.put_task(TaskRecord("L", 0, {"command": "false"}))
    assert len(keys_under(redis_prefix)) == 10
    report = await redis_store.prune(keep_last=0)
    assert (report.executions, report.events, report.task_lists) == (1, 3, 1)
    assert keys_under(redis_prefix) == []


async def test_re_append_adds_no_stream_entries(redis_store: RedisStore, redis_prefix: str) -> None:
    batch = [StoredEvent("e", s, "m", "f") for s in range(1, 6)]
    await redis_store.append_events(batch)
    await redis_store.append_events(batch)
    entries = await redis_store._r.xrange(f"{redis_prefix}events:e")
    assert [entry_id for entry_id, _ in entries or []] == [f"{s}-1" for s in range(1, 6)]
    assert await redis_store._r.hget(f"{redis_prefix}event_bytes", "e") == "5"


async def test_unreachable_redis_is_a_service_error_without_the_password() -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RedisStore(f"redis://user:s3cret@127.0.0.1:{port}/0")
    with pytest.raises(ServiceError, match="cannot reach Redis") as caught:
        await store.open()
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in str(caught.value.data)
    await store.close()


def test_redact_keeps_only_scheme_host_port_and_db() -> None:
    assert _redact("redis://:pw@localhost:6380/2") == "redis://localhost:6380/2"
    assert _redact("rediss://user:pw@[::1]/0") == "rediss://::1/0"
