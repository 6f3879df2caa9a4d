"""The MCP door over real streamable HTTP: the SDK's own client against a real daemon."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import psutil
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from tests.polling import poll_until, poll_until_async
from tests.server.conftest import Daemon

from cc_executor.server.mcp import MANIFEST_PATH, WAIT_MAX_S

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
TICKER = str(PROGRAMS / "ticker.py")
STATE_TIMEOUT_S = 15.0
EXPECTED_TOOLS = {
    "execute",
    "status",
    "peek",
    "wait",
    "cancel",
    "pause",
    "resume",
    "list_executions",
    "history",
    "run_task_list",
    "task_list_status",
    "task_list_control",
}


@asynccontextmanager
async def mcp_client(
    daemon: Daemon, headers: dict[str, str] | None = None
) -> AsyncIterator[Client]:
    sent = {"Authorization": f"Bearer {daemon.token}"} if headers is None else headers
    async with (
        httpx2.AsyncClient(headers=sent) as http,
        Client(streamable_http_client(daemon.http + "/mcp", http_client=http)) as client,
    ):
        yield client


async def call(client: Client, tool: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args, **kw)
    assert not result.is_error, result
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def call_error(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert result.is_error, result
    assert isinstance(result.structured_content, dict)
    error: dict[str, Any] = result.structured_content["error"]
    return error


async def until(
    check: Callable[[], Awaitable[dict[str, Any] | None]], *, what: str
) -> dict[str, Any]:
    """Bounded polling of a tool result: this door has no push for it."""
    found: list[dict[str, Any]] = []

    async def ready() -> bool:
        result = await check()
        if result is not None:
            found.append(result)
        return bool(found)

    await poll_until_async(ready, timeout=STATE_TIMEOUT_S, what=what)
    return found[0]


async def test_list_tools_have_descriptions_and_schemas(daemon: Daemon) -> None:
    async with mcp_client(daemon) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == EXPECTED_TOOLS
    for tool in tools.values():
        assert tool.description, tool.name
        assert len(tool.description) > 20, tool.name
        assert tool.input_schema["type"] == "object", tool.name
    execute = tools["execute"].input_schema["properties"]
    assert {"command", "argv", "agent", "prompt", "timeout", "idle_timeout", "cwd", "env"} <= set(
        execute
    )
    assert "stdin" not in execute  # MCP has no stdin channel
    assert all(execute[name].get("description") for name in ("command", "argv", "timeout"))
    wait = tools["wait"].input_schema["properties"]["timeout"]
    assert wait["maximum"] == WAIT_MAX_S
    assert tools["status"].annotations is not None
    assert tools["status"].annotations.read_only_hint is True


async def test_execute_then_wait_for_echo_with_progress(daemon: Daemon) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async with mcp_client(daemon) as client:
        started = await call(client, "execute", {"command": "echo hello-mcp; echo oops >&2"})
        assert started["pid"] > 0
        eid = started["execution_id"]
        done = await call(
            client, "wait", {"execution_id": eid, "timeout": 20}, progress_callback=on_progress
        )
    assert done["done"] is True
    assert done["state"] == "completed"
    assert done["exit_code"] == 0
    assert done["output_tail"]["text"].splitlines() == ["hello-mcp", "oops"]
    assert progress
    assert progress[0][1] == 20


async def test_wait_returns_not_done_at_its_timeout(daemon: Daemon) -> None:
    async with mcp_client(daemon) as client:
        eid = (await call(client, "execute", {"argv": [sys.executable, TICKER, "0.05", "2000"]}))[
            "execution_id"
        ]
        pending = await call(client, "wait", {"execution_id": eid, "timeout": 0.3})
        assert pending["done"] is False
        assert pending["state"] == "running"
        await call(client, "cancel", {"execution_id": eid})


async def test_peek_tail_and_events_decode_base64(daemon: Daemon) -> None:
    script = "import sys; sys.stdout.buffer.write(b'one\\ntwo\\nbad\\xff\\n'); print('three')"
    async with mcp_client(daemon) as client:
        eid = (await call(client, "execute", {"argv": [sys.executable, "-c", script]}))[
            "execution_id"
        ]
        await call(client, "wait", {"execution_id": eid, "timeout": 20})
        tail = await call(client, "peek", {"execution_id": eid, "lines": 2})
        assert tail["output_tail"]["text"] == "bad\ufffd\nthree"
        paged = await call(client, "peek", {"execution_id": eid, "after_seq": 0, "limit": 1})
        assert [e["method"] for e in paged["events"]] == ["process.started"]
        assert paged["more"] is True
        rest = await call(
            client, "peek", {"execution_id": eid, "after_seq": paged["next_after_seq"]}
        )
    outputs = [e["params"] for e in rest["events"] if e["method"] == "process.output"]
    assert any(p.get("decoded_from_base64") for p in outputs), outputs
    assert "bad\ufffd" in "".join(p["data"] for p in outputs)
    assert rest["events"][-1]["method"] == "process.completed"
    assert rest["more"] is False


async def test_pause_resume_cancel_a_long_command(daemon: Daemon) -> None:
    async with mcp_client(daemon) as client:
        started = await call(
            client, "execute", {"argv": [sys.executable, TICKER, "0.05", "100000"]}
        )
        eid, pid = started["execution_id"], started["pid"]

        async def ticked() -> dict[str, Any] | None:
            tail = await call(client, "peek", {"execution_id": eid, "lines": 1})
            return tail if tail["output_tail"]["text"].startswith("tick") else None

        await until(ticked, what="the first tick")
        paused = await call(client, "pause", {"execution_id": eid})
        assert paused["state"] == "paused"
        await poll_until(
            lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED,
            timeout=STATE_TIMEOUT_S,
            what="SIGSTOP",
        )
        assert (await call(client, "status", {"execution_id": eid}))["state"] == "paused"
        listed = await call(client, "list_executions", {"states": ["paused"]})
        assert [row["execution_id"] for row in listed["executions"]] == [eid]
        resumed = await call(client, "resume", {"execution_id": eid})
        assert resumed["state"] == "running"
        await poll_until(
            lambda: psutil.Process(pid).status() != psutil.STATUS_STOPPED,
            timeout=STATE_TIMEOUT_S,
            what="SIGCONT",
        )
        await call(client, "cancel", {"execution_id": eid})
        done = await call(client, "wait", {"execution_id": eid, "timeout": 20})
        assert done["done"] is True
        assert done["state"] == "canceled"
        error = await call_error(client, "resume", {"execution_id": eid})
        assert error["code"] == -32004
        history = await call(client, "history", {"limit": 5})
        assert history["executions"][0]["execution_id"] == eid


@pytest.mark.parametrize("tool", ["status", "peek", "wait", "cancel", "pause", "resume"])
async def test_unknown_execution_is_a_tool_error_with_its_code(daemon: Daemon, tool: str) -> None:
    async with mcp_client(daemon) as client:
        error = await call_error(client, tool, {"execution_id": "no-such-id"})
    assert error["code"] == -32003
    assert "no-such-id" in error["message"]


@pytest.mark.parametrize(
    "args",
    [
        {"command": "echo", "argv": ["echo"]},  # two targets
        {"agent": "claude"},  # agent without prompt
        {"command": "echo", "timeout": "soon"},
        {"command": "echo", "stdin": True},  # MCP has no stdin
        {"command": "echo", "surprise": 1},
    ],
)
async def test_bad_execute_params_are_invalid_params(daemon: Daemon, args: dict[str, Any]) -> None:
    async with mcp_client(daemon) as client:
        error = await call_error(client, "execute", args)
    assert error["code"] == -32602
    assert error["data"]["errors"]


async def test_bad_wait_timeout_and_unknown_tool(daemon: Daemon) -> None:
    async with mcp_client(daemon) as client:
        error = await call_error(client, "wait", {"execution_id": "x", "timeout": WAIT_MAX_S + 1})
        assert error["code"] == -32602
        with pytest.raises(MCPError) as raised:
            await client.call_tool("no_such_tool", {})
    assert raised.value.code == -32602


async def test_task_list_runs_through_the_real_scheduler(daemon: Daemon) -> None:
    async with mcp_client(daemon) as client:
        created = await call(
            client,
            "run_task_list",
            {"name": "two", "tasks": [{"command": "echo first"}, {"argv": ["echo", "second"]}]},
        )
        list_id = created["list_id"]

        async def finished() -> dict[str, Any] | None:
            status = await call(client, "task_list_status", {"list_id": list_id})
            return status if status["state"] in ("completed", "failed", "canceled") else None

        status = await until(finished, what="the task list to finish")
        assert status["state"] == "completed"
        error = await call_error(client, "task_list_status", {"list_id": "no-such-list"})
    assert error["code"] == -32003


async def test_refused_without_token_with_bad_token_and_bad_origin(daemon: Daemon) -> None:
    url = daemon.http + "/mcp"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=STATE_TIMEOUT_S) as http:
        missing = await http.post(url, json=body, headers=accept)
        wrong = await http.post(url, json=body, headers={**accept, "Authorization": "Bearer nope"})
        origin = await http.post(
            url,
            json=body,
            headers={
                **accept,
                "Authorization": f"Bearer {daemon.token}",
                "Origin": "http://evil.example",
            },
        )
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 403
    assert origin.status_code == 403
    assert daemon.token not in missing.text + wrong.text + origin.text
    with pytest.raises(ExceptionGroup) as raised:  # the SDK client sees the refusal too
        async with mcp_client(daemon, headers={}) as client:
            await client.list_tools()
    assert raised.group_contains(MCPError, depth=None)


async def test_manifest_lists_transports_and_the_served_tools(daemon: Daemon) -> None:
    async with httpx.AsyncClient(timeout=STATE_TIMEOUT_S) as http:
        response = await http.get(daemon.http + MANIFEST_PATH)  # no token needed
    assert response.status_code == 200
    manifest = response.json()
    assert manifest["name"] == "cc-executor"
    transports = {t["type"]: t for t in manifest["transports"]}
    assert transports["streamable-http"]["url"] == daemon.http + "/mcp"
    assert transports["stdio"] == {"type": "stdio", "command": "cc-executor", "args": ["mcp"]}
    async with mcp_client(daemon) as client:
        served = (await client.list_tools()).tools
    assert manifest["tools"] == [
        t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in served
    ]
