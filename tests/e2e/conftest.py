"""Shared by the end-to-end tests: a fresh fake Anthropic Messages API per test, on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.e2e.fake_anthropic import FakeAnthropic


@pytest.fixture
def api() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake
