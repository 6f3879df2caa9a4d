"""The package surface: what ``cc_executor.storage`` exports and how a backend is chosen."""

from __future__ import annotations

from pathlib import Path

import pytest

from cc_executor import storage
from cc_executor.config import Settings
from cc_executor.storage import RedisStore, SqliteStore, Store, open_store


def test_exports_resolve() -> None:
    for name in storage.__all__:
        assert getattr(storage, name) is not None, name
    with pytest.raises(AttributeError):
        _ = storage.NoSuchThing


def test_open_store_defaults_to_sqlite_in_the_state_dir(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path, sqlite_synchronous="FULL")
    store = open_store(settings)
    assert isinstance(store, SqliteStore)
    assert isinstance(store, Store)
    assert store.path == tmp_path / "cc-executor.db" == settings.store_path
    assert store.synchronous == "FULL"


def test_open_store_redis(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        state_dir=tmp_path,
        store="redis",
        redis_url="redis://127.0.0.1:6390/3",
        redis_prefix="team-a:",
    )
    store = open_store(settings)
    assert isinstance(store, RedisStore)
    assert isinstance(store, Store)
    assert (store.url, store.prefix) == ("redis://127.0.0.1:6390/3", "team-a:")


def test_storage_settings_defaults() -> None:
    settings = Settings(_env_file=None)
    assert settings.store == "sqlite"
    assert settings.retention_max_age_days == 30
    assert settings.retention_max_executions == 10_000
    assert settings.retention_max_event_bytes == 2 * 1024**3
