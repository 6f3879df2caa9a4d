"""The tests' Redis: its URL and the keys under a prefix (CI starts one on 127.0.0.1:6379).

Redis is not optional: an unreachable server fails the Redis cases loudly instead of skipping
them. ``CC_EXECUTOR_REDIS_URL`` points the tests at another server.
"""

from __future__ import annotations

import os

import redis

REDIS_URL = os.environ.get("CC_EXECUTOR_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_PREFIX = "cc-executor-test:"


def keys_under(prefix: str) -> list[str]:
    """Every Redis key under ``prefix`` (tests only: SCAN walks the whole keyspace)."""
    with redis.Redis.from_url(REDIS_URL, decode_responses=True) as client:
        return sorted(client.scan_iter(match=f"{prefix}*", count=1000))
