"""Fixtures of the client tests: a scripted fake daemon on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.client.fake_daemon import FakeDaemon


@pytest.fixture
async def fake() -> AsyncIterator[FakeDaemon]:
    async with FakeDaemon().running() as daemon:
        yield daemon
