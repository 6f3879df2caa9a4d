"""The package's public surface, and that it stays sans-I/O."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from cc_executor import protocol

MODULES = ["chunking", "dispatcher", "jsonrpc", "models", "names", "schema"]
PACKAGE_DIR = Path(protocol.__file__).parent
# What a sans-I/O core must not pull in (directly): loops, sockets, processes, frameworks.
FORBIDDEN = {"asyncio", "socket", "subprocess", "fastapi", "starlette", "redis", "uvicorn", "os"}


@pytest.mark.parametrize("name", MODULES)
def test_every_module_declares_all_and_the_package_reexports_it(name: str) -> None:
    module = importlib.import_module(f"cc_executor.protocol.{name}")
    assert module.__all__
    for symbol in module.__all__:
        assert hasattr(module, symbol), symbol
        assert getattr(protocol, symbol) is getattr(module, symbol), symbol
    assert module.__doc__


def test_package_all_is_exactly_the_modules_names() -> None:
    expected: set[str] = set()
    for name in MODULES:
        expected |= set(importlib.import_module(f"cc_executor.protocol.{name}").__all__)
    assert set(protocol.__all__) == expected
    assert len(protocol.__all__) == len(expected)


@pytest.mark.parametrize("path", sorted(PACKAGE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_no_io_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
