"""A real Supervisor with a short TERM grace and a per-test spool dir."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cc_executor.supervisor import Supervisor

TEST_GRACE_S = 0.5  # keeps kill paths fast; programs that honour TERM exit well within it


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[Supervisor]:
    async with Supervisor(
        shell="/bin/sh",
        terminate_grace_s=TEST_GRACE_S,
        spool_dir=tmp_path / "spool",
        base_env=dict(os.environ),
    ) as sup:
        yield sup
