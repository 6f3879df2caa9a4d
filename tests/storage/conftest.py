"""Store fixtures: a SQLite file per test, and a real Redis with a unique key prefix per test.

Redis is not optional here: CI starts one, and an unreachable Redis fails the Redis cases loudly
instead of skipping them. ``CC_EXECUTOR_REDIS_URL`` points the tests at another server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from tests.redis_keys import REDIS_URL

from cc_executor.storage import SqliteStore, Store
from cc_executor.storage.redis import RedisStore

StoreFactory = Callable[[], Store]


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
