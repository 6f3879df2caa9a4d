"""``cc-executor mcp``: the SDK's stdio client spawns the real command; several share a store."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

CC_EXECUTOR = Path(sys.executable).with_name("cc-executor")  # the installed console script


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
    # A second stdio server on the same state dir shares the store (history of both) and
    # leaves the first one's finished and running executions alone.
    async with stdio_client(tmp_path) as first, stdio_client(tmp_path) as second:
        running = await call(first, "execute", {"command": "sleep 30"})
        seen = await call(second, "status", {"execution_id": started["execution_id"]})
        other = await call(second, "status", {"execution_id": running["execution_id"]})
        still = await call(first, "status", {"execution_id": running["execution_id"]})
        await call(first, "cancel", {"execution_id": running["execution_id"]})
    assert seen["state"] == "completed"
    assert other["state"] == "running"  # read from the shared store, not marked lost
    assert still["state"] == "running"
    assert (tmp_path / "state" / "cc-executor.db").exists()
    assert not list((tmp_path / "state").glob("spool-*"))  # spools are private temp dirs
