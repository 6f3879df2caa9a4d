"""Shared fixtures: the tiny child programs in ``tests/programs/``, and a real Supervisor."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from cc_executor.supervisor import Supervisor

PROGRAMS = Path(__file__).parent / "programs"
TEST_GRACE_S = 0.5  # keeps kill paths fast; programs that honour TERM exit well within it


@pytest.fixture
def program() -> Callable[..., list[str]]:
    """``program("tree.py", "group")`` -> argv running that test program with this interpreter."""

    def argv(name: str, *args: str) -> list[str]:
        return [sys.executable, str(PROGRAMS / name), *args]

    return argv


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[Supervisor]:
    """A real Supervisor with a short TERM grace and a per-test spool dir."""
    async with Supervisor(
        shell="/bin/sh",
        terminate_grace_s=TEST_GRACE_S,
        spool_dir=tmp_path / "spool",
        base_env=dict(os.environ),
    ) as sup:
        yield sup


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix no other test uses; every key under it is deleted afterwards."""
    import uuid

    import redis
    from redis.exceptions import RedisError
    from tests.redis_keys import REDIS_URL, TEST_PREFIX, keys_under

    prefix = f"{TEST_PREFIX}{uuid.uuid4().hex}:"
    yield prefix
    try:
        leftovers = keys_under(prefix)
        if leftovers:
            with redis.Redis.from_url(REDIS_URL) as client:
                client.delete(*leftovers)
    except RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); start redis-server")
