"""Shared fixtures: the tiny child programs in ``tests/programs/``, a real Supervisor, and log
sinks put back after each test."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from loguru import logger

from cc_executor.supervisor import Supervisor

PROGRAMS = Path(__file__).parent / "programs"
TEST_GRACE_S = 0.5  # keeps kill paths fast; programs that honour TERM exit well within it


@pytest.fixture(autouse=True)
def restore_default_sink() -> Iterator[None]:
    """After each test, loguru writes to whatever ``sys.stderr`` is at the time.

    A test that configures logging (a CLI command run in process, ``configure_logging``) leaves
    a sink on the stream pytest or the CLI runner swapped in, and closes afterwards: every later
    record, from any test, then failed with "I/O operation on closed file".
    """
    yield
    logger.remove()
    logger.add(lambda message: sys.stderr.write(message), level="DEBUG")  # noqa: PLW0108
    logging.basicConfig(handlers=[], force=True)


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
