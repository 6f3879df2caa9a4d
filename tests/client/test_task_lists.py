"""``WebSocketClient.task_list_*``: durable lists over ``/ws/mcp``.

Against the scripted fake daemon: notifications are routed by ``list_id``, ``task.started``
registers the task execution's handle before its events arrive, a dropped connection fails the
list handle with ``ConnectionLost`` (list notifications are not replayed). Against a real daemon
(in-thread, loopback): create, follow, status, pause, resume, cancel.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.client.fake_daemon import FakeConn, FakeDaemon, script
from tests.client.test_client import client_for
from tests.server.conftest import run_daemon

from cc_executor.client import (
    Completed,
    ConnectionLost,
    SyncWebSocketClient,
    TaskListEvent,
    TaskListHandle,
    WebSocketClient,
)
from cc_executor.errors import InvalidParams, InvalidTransition

WAIT_S = 10.0  # everything here is loopback and finishes in milliseconds


async def test_list_notifications_are_routed_and_tasks_followed(fake: FakeDaemon) -> None:
    eid = "L1.0.1"
    events = script(eid, [b"hello\n"])

    @fake.on("task_list.create")
    async def create(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        lid = params["list_id"]
        conn.notify_after_response(
            "task.started", {"list_id": lid, "index": 0, "execution_id": eid, "attempt": 1}
        )
        for method, p in events:
            conn.notify_after_response(method, p)
        conn.notify_after_response(
            "task.completed",
            {"list_id": lid, "index": 0, "status": "completed", "execution_id": eid},
        )
        conn.notify_after_response("task_list.completed", {"list_id": lid, "state": "completed"})
        return {"list_id": lid, "state": "queued", "tasks": []}

    async with client_for(fake) as client, asyncio.timeout(WAIT_S):
        handle = await client.task_list_create([{"command": "echo hello"}], list_id="L1")
        _, sent = await fake.next_request("task_list.create")
        assert sent["tasks"] == [{"command": "echo hello"}]
        assert sent["on_failure"] == "stop"
        assert handle.created["state"] == "queued"
        seen: list[TaskListEvent] = []
        outputs: list[object] = []
        async for event in handle:
            seen.append(event)
            if event.execution is not None:
                async for item in event.execution:
                    outputs.append(item.params.get("data"))
                    if isinstance(item, Completed):
                        assert item.status == "completed"
                assert event.execution.stdout == b""  # capture=False: streamed, not kept
        assert [e.method for e in seen] == ["task.started", "task.completed", "task_list.completed"]
        assert seen[0].index == 0
        assert seen[0].execution_id == eid
        assert seen[1].status == "completed"
        assert seen[2].final
        assert handle.done
        assert outputs == [None, "hello\n", None]  # started, the output, completed
        final = await handle.wait()
        assert final.status == "completed"


async def test_a_dropped_connection_fails_the_list_handle(fake: FakeDaemon) -> None:
    @fake.on("task_list.create")
    async def create(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        return {"list_id": params["list_id"], "state": "queued", "tasks": []}

    async with client_for(fake) as client, asyncio.timeout(WAIT_S):
        first = await fake.next_connection()
        handle = await client.task_list_create([{"command": "true"}])
        first.drop()
        with pytest.raises(ConnectionLost, match="task_list_status"):
            await handle.wait()


async def test_create_error_releases_the_list_handle(fake: FakeDaemon) -> None:
    @fake.on("task_list.create")
    async def create(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        raise InvalidParams("no tasks")

    async with client_for(fake) as client, asyncio.timeout(WAIT_S):
        with pytest.raises(InvalidParams):
            await client.task_list_create([], list_id="L2")
        assert "L2" not in client._lists


async def test_task_lists_on_a_real_daemon(tmp_path: Path) -> None:
    fifo = tmp_path / "gate"
    with run_daemon(tmp_path) as daemon:
        async with WebSocketClient(url=daemon.url, token=daemon.token) as client:
            async with asyncio.timeout(WAIT_S):
                handle = await client.task_list_create(
                    [
                        {"command": "echo one"},
                        {"command": f"mkfifo {fifo}; echo ready; read line < {fifo}"},
                        {"command": "echo three"},
                    ],
                    name="wire",
                )
                assert isinstance(handle, TaskListHandle)
                paused = False
                async for event in handle:
                    if event.execution is None:
                        continue
                    async for item in event.execution:
                        out = item.params.get("data")
                        if event.index == 1 and out == "ready\n" and not paused:
                            # Hold the queue while task 1 runs, then let task 1 finish.
                            view = await client.task_list_pause(handle.list_id)
                            assert view["state"] == "paused"
                            paused = True
                            await asyncio.to_thread(fifo.write_text, "go\n")
                    if event.index == 1:
                        status = await client.task_list_status(handle.list_id)
                        assert status["state"] == "paused"
                        await client.task_list_resume(handle.list_id)
                assert handle.final is not None
                assert handle.final.status == "completed"
                status = await client.task_list_status(handle.list_id)
                assert [t["state"] for t in status["tasks"]] == ["completed"] * 3
                with pytest.raises(InvalidTransition):
                    await client.task_list_cancel(handle.list_id)  # finished
        # The blocking twin runs its own loop: from a thread here.
        sync = SyncWebSocketClient(url=daemon.url, token=daemon.token)
        view = await asyncio.to_thread(sync.task_list_status, handle.list_id)
        assert view["name"] == "wire"
        with pytest.raises(InvalidTransition):
            await asyncio.to_thread(sync.task_list_resume, handle.list_id)
