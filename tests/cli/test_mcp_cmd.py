"""``cc-executor mcp``: the SDK's stdio client spawns the real command with its own state dir."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from cc_executor.cli.mcp_cmd import LOCK_FILE_NAME, STDIO_STATE_SUBDIR

CC_EXECUTOR = Path(sys.executable).with_name("cc-executor")  # the installed console script
SECOND_START_TIMEOUT_S = 60.0  # a refused second start: interpreter start-up, then exit


def environment(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "CC_EXECUTOR_STATE_DIR": str(tmp_path / "state"),
        "CC_EXECUTOR_LOG_LEVEL": "WARNING",
    }


@asynccontextmanager
async def stdio_client(tmp_path: Path) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=str(CC_EXECUTOR), args=["mcp"], env=environment(tmp_path), cwd=tmp_path
    )
    async with Client(params) as client:
        yield client


async def call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def test_stdio_serves_the_tools_and_runs_echo(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"execute", "wait", "peek", "run_task_list"} <= names
        started = await call(client, "execute", {"command": "echo over-stdio"})
        done = await call(client, "wait", {"execution_id": started["execution_id"], "timeout": 20})
        assert done["state"] == "completed"
        assert done["output_tail"]["text"] == "over-stdio"
        missing = await client.call_tool("status", {"execution_id": "nope"})
        assert missing.is_error
        assert isinstance(missing.structured_content, dict)
        assert missing.structured_content["error"]["code"] == -32003
        # The embedded service keeps its own history, away from a daemon's state dir.
        state = tmp_path / "state" / STDIO_STATE_SUBDIR
        assert (state / LOCK_FILE_NAME).exists()
        assert (state / "cc-executor.db").exists()
        assert not (tmp_path / "state" / "cc-executor.db").exists()
        # A second stdio server on the same state dir would mark the first one's executions
        # lost: it is refused while the first runs.
        second = await asyncio.to_thread(
            subprocess.run,
            [str(CC_EXECUTOR), "mcp"],
            env=environment(tmp_path),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SECOND_START_TIMEOUT_S,
            check=False,
        )
    assert second.returncode == 1
    assert "another `cc-executor mcp`" in second.stderr
    assert second.stdout == ""  # stdout is the MCP wire: nothing else may reach it
