from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cc_executor.api import clear_history
from cc_executor.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", reports_dir=tmp_path / "reports")


@pytest.fixture(autouse=True)
def _fresh_history() -> Iterator[None]:
    clear_history()
    yield
    clear_history()
