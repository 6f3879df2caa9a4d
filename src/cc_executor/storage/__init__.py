"""Durable storage: the :class:`Store` contract, its two backends and :func:`open_store`.

Owns: choosing a backend from :class:`~cc_executor.config.Settings`. Does not own when anything is
written or read (the recorder and the scheduler do). ``RedisStore`` is imported on first use, so
the ``redis`` extra is needed only when it is chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cc_executor.storage.base import (
    FINISHED_EXECUTION_STATES,
    FINISHED_TASK_LIST_STATES,
    LOST,
    DurationSample,
    ExecutionRecord,
    HookRunRecord,
    PruneReport,
    Store,
    StoredEvent,
    TaskListRecord,
    TaskRecord,
)
from cc_executor.storage.sqlite import SqliteStore

if TYPE_CHECKING:
    from cc_executor.config import Settings
    from cc_executor.storage.redis import RedisStore

__all__ = [
    "FINISHED_EXECUTION_STATES",
    "FINISHED_TASK_LIST_STATES",
    "LOST",
    "DurationSample",
    "ExecutionRecord",
    "HookRunRecord",
    "PruneReport",
    "RedisStore",
    "SqliteStore",
    "Store",
    "StoredEvent",
    "TaskListRecord",
    "TaskRecord",
    "open_store",
]


def __getattr__(name: str) -> object:
    if name == "RedisStore":
        from cc_executor.storage.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(settings: Settings) -> Store:
    """The store ``settings.store`` names, built but not yet opened: ``await store.open()``."""
    if settings.store == "redis":
        from cc_executor.storage.redis import RedisStore

        return RedisStore(settings.redis_url, prefix=settings.redis_prefix)
    return SqliteStore(settings.store_path, synchronous=settings.sqlite_synchronous)
