"""The MCP Inspector's CLI (an independent, TypeScript MCP client) against a real daemon.

The inspector is installed by ``scripts/install-inspector.sh`` into ``.tools/inspector``; these
tests only run it (against a loopback port) and skip with the reason when it is not there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.server.conftest import Daemon

ROOT = Path(__file__).resolve().parents[2]
INSPECTOR = ROOT / ".tools" / "inspector" / "node_modules" / ".bin" / "mcp-inspector"
INSPECTOR_TIMEOUT_S = 90.0  # node start-up plus one MCP exchange, on a loaded 2-core machine

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed"),
    pytest.mark.skipif(
        not INSPECTOR.exists(), reason="run scripts/install-inspector.sh to install the inspector"
    ),
]


def inspect(
    daemon: Daemon, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(INSPECTOR),
            "--cli",
            daemon.http + "/mcp",
            "--transport",
            "http",
            "--header",
            f"Authorization: Bearer {daemon.token if token is None else token}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=INSPECTOR_TIMEOUT_S,
        check=False,
    )


def parsed(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_inspector_lists_the_tools(daemon: Daemon) -> None:
    listed = parsed(inspect(daemon, "--method", "tools/list"))
    names = {tool["name"] for tool in listed["tools"]}
    assert {"execute", "wait", "peek", "cancel", "history"} <= names


def test_inspector_calls_execute_and_status(daemon: Daemon) -> None:
    started = parsed(
        inspect(
            daemon,
            "--method",
            "tools/call",
            "--tool-name",
            "execute",
            "--tool-arg",
            "command=echo from-inspector",
        )
    )
    assert started["isError"] is False
    eid = started["structuredContent"]["execution_id"]
    waited = parsed(
        inspect(
            daemon,
            "--method",
            "tools/call",
            "--tool-name",
            "wait",
            "--tool-arg",
            f"execution_id={eid}",
        )
    )
    assert waited["structuredContent"]["done"] is True
    assert waited["structuredContent"]["output_tail"]["text"] == "from-inspector"


def test_inspector_is_refused_with_a_bad_token(daemon: Daemon) -> None:
    result = inspect(daemon, "--method", "tools/list", token="wrong")
    assert result.returncode != 0
