"""Shared fixtures: the tiny child programs in ``tests/programs/``, and a real Supervisor."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
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
