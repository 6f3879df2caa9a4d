"""Every supervisor module declares ``__all__`` and exports exactly what exists."""

from __future__ import annotations

import importlib

import pytest

import cc_executor.supervisor

MODULES = ["states", "eventlog", "process", "execution", "attempts", "supervisor"]


@pytest.mark.parametrize("name", MODULES)
def test_module_exports(name: str) -> None:
    module = importlib.import_module(f"cc_executor.supervisor.{name}")
    assert module.__doc__
    exported = module.__all__
    assert sorted(set(exported)) == sorted(exported)
    assert all(hasattr(module, item) for item in exported)


def test_package_exports() -> None:
    package = cc_executor.supervisor
    assert all(hasattr(package, item) for item in package.__all__)
    assert {"Supervisor", "ExecutionSpec", "Execution", "EventLog", "Event", "Gap"} <= set(
        package.__all__
    )
