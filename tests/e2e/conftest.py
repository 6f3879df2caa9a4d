"""Shared by the end-to-end tests: a fresh fake Anthropic Messages API per test, on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.claude_env import CLAUDE, RUN_TIMEOUT_S, offline_env
from tests.e2e.fake_anthropic import FakeAnthropic

from cc_executor.config import Settings


@pytest.fixture
def api() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Python-API settings on a fresh state dir with the test's Claude CLI; history cleared."""
    from cc_executor.api import clear_history

    clear_history()
    yield Settings(state_dir=tmp_path / "state", claude_path=CLAUDE, terminate_grace_s=2.0)
    clear_history()


@pytest.fixture
def work(tmp_path: Path) -> dict[str, Path]:
    """A fresh ``home`` (the CLI's ``HOME``) and working directory ``cwd`` for Claude runs."""
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    return {"home": home, "cwd": cwd}


@pytest.fixture
def options(api: FakeAnthropic, work: dict[str, Path]) -> dict[str, object]:
    """Python-API options for an offline Claude run against ``api``, bounded in time."""
    return {
        "env": offline_env(api.base_url, work["home"]),
        "cwd": work["cwd"],
        "timeout": RUN_TIMEOUT_S,
        "dangerously_skip_permissions": True,
    }
