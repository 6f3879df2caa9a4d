"""The daemon's app does not import the MCP SDK until the MCP door is used (idle RSS and start-up
time; see docs/benchmarks.md, round 6). The door itself is exercised by test_mcp.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_PROBE = """
import sys
from cc_executor.config import Settings
from cc_executor.server.app import create_app

app = create_app(Settings(state_dir=sys.argv[1], port=1))
loaded = sorted(name for name in ("mcp", "mcp_types") if name in sys.modules)
assert not loaded, loaded
assert app.state.mcp.started is False
door = app.state.mcp.door()  # the manifest's path: builds the catalogue, imports the SDK
assert "mcp" in sys.modules
assert any(tool.name == "execute" for tool in door.tools)
"""


def test_create_app_does_not_import_the_mcp_sdk(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
