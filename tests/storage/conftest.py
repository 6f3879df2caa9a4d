"""Store fixtures: a SQLite file per test, and a real Redis with a unique key prefix per test.

Redis is not optional here: CI starts one, and an unreachable Redis fails the Redis cases loudly
instead of skipping them. ``CC_EXECUTOR_REDIS_URL`` points the tests at another server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import RedisError

from cc_executor.storage import SqliteStore, Store
from cc_executor.storage.redis import RedisStore

REDIS_URL = os.environ.get("CC_EXECUTOR_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_PREFIX = "cc-executor-test:"

StoreFactory = Callable[[], Store]


def keys_under(prefix: str) -> list[str]:
    """Every Redis key under ``prefix`` (tests only: SCAN walks the whole keyspace)."""
    with redis.Redis.from_url(REDIS_URL, decode_responses=True) as client:
        return sorted(client.scan_iter(match=f"{prefix}*", count=1000))


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix no other test uses; every key under it is deleted afterwards."""
    prefix = f"{TEST_PREFIX}{uuid.uuid4().hex}:"
    yield prefix
    try:
        leftovers = keys_under(prefix)
        if leftovers:
            with redis.Redis.from_url(REDIS_URL) as client:
                client.delete(*leftovers)
    except RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); start redis-server")


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Builds unopened stores that share one backing database, so a second one sees the first."""
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "state" / "cc-executor.db")
    prefix: str = request.getfixturevalue("redis_prefix")
    return lambda: RedisStore(REDIS_URL, prefix=prefix)


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[Store]:
    opened = make_store()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
