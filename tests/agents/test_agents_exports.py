"""The public surface of cc_executor.agents."""

from __future__ import annotations

import importlib

import pytest

from cc_executor import agents

MODULES = ["claude", "claude_stream", "claude_failures", "shell"]


def test_package_exports_resolve() -> None:
    for name in agents.__all__:
        assert getattr(agents, name) is not None


@pytest.mark.parametrize("module", MODULES)
def test_module_exports_resolve(module: str) -> None:
    mod = importlib.import_module(f"cc_executor.agents.{module}")
    assert mod.__all__
    for name in mod.__all__:
        assert hasattr(mod, name), name
