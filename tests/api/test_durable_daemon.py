"""Durable task lists of the Python API on a real daemon (in-thread, loopback), shell tasks.

``server_url``: the list is created over ``task_list.create`` and followed by its
notifications. ``resume`` on a daemon waits for a list it did not create (the creating client
went away): it follows the running task's execution and reads the status between tasks.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.server.conftest import run_daemon

from cc_executor.api import TaskEvent, TaskListResults, acc_execute_list, aresume
from cc_executor.client import WebSocketClient
from cc_executor.config import Settings
from cc_executor.protocol.names import Notification

WAIT_S = 30.0  # a few shell commands on loopback


async def test_durable_list_on_a_daemon_and_resume_waits_for_it(
    tmp_path: Path, settings: Settings
) -> None:
    fifo = tmp_path / "gate"
    with run_daemon(tmp_path / "daemon") as daemon:
        async with asyncio.timeout(WAIT_S):
            results = await acc_execute_list(
                [{"command": "echo a"}, {"command": "exit 4"}, {"command": "echo never"}],
                durable=True,
                server_url=daemon.url,
                token=daemon.token,
                settings=settings,
            )
        assert isinstance(results, TaskListResults)
        assert [r.state for r in results] == ["completed", "failed", "skipped"]
        assert [r.exit_code for r in results] == [0, 4, None]
        assert results.state == "failed"

        # A list whose creator went away while task 1 waits on the fifo.
        async with WebSocketClient(url=daemon.url, token=daemon.token) as creator:
            handle = await creator.task_list_create(
                [
                    {"command": "echo first"},
                    {"command": f"mkfifo {fifo}; echo ready; read line < {fifo}; echo got $line"},
                    {"command": "echo third"},
                ],
                follow_tasks=False,
            )
            async with asyncio.timeout(WAIT_S):
                async for note in handle:
                    if note.method == Notification.TASK_STARTED and note.index == 1:
                        break
        list_id = handle.list_id
        attached = asyncio.Event()
        seen: list[TaskEvent] = []

        def progress(event: TaskEvent) -> None:
            seen.append(event)
            if event.execution_id == f"{list_id}.1.1" and event.text("data") == "ready\n":
                attached.set()  # resume follows the running task, and the fifo exists

        async with asyncio.timeout(WAIT_S):
            waiter = asyncio.create_task(
                aresume(
                    list_id,
                    server_url=daemon.url,
                    token=daemon.token,
                    settings=settings,
                    progress_callback=progress,
                )
            )
            await attached.wait()
            await asyncio.to_thread(fifo.write_text, "go\n")
            resumed = await waiter
    assert resumed.list_id == list_id
    assert resumed.state == "completed"
    assert [r.text for r in resumed] == ["first\n", "ready\ngot go\n", "third\n"]
    followed = {e.execution_id for e in seen if e.method == Notification.PROCESS_COMPLETED}
    # Task 1 was followed live; task 2 either live (found by status) or, when it ended between
    # two status reads, replayed for its result.
    assert f"{list_id}.1.1" in followed
