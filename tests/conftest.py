"""Shared fixtures: the tiny child programs in ``tests/programs/``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture
def program() -> Callable[..., list[str]]:
    """``program("tree.py", "group")`` -> argv running that test program with this interpreter."""

    def argv(name: str, *args: str) -> list[str]:
        return [sys.executable, str(PROGRAMS / name), *args]

    return argv
