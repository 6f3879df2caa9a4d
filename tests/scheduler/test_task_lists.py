"""Task lists through the real daemon's ``task_list.*`` methods: order, dependencies, retries,
on_failure, queue pause/resume, pausing the running task, cancel, notifications and errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.processes import marked_alive
from tests.server.conftest import Daemon, Peer, run_daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Any:
    with run_daemon(tmp_path, terminate_grace_s=1.0) as d:
        yield d


async def _until(peer: Peer, method: str, **match: Any) -> dict[str, Any]:
    """Next notification ``method`` whose params contain ``match`` (others are kept aside)."""
    while True:
        frame = await peer.next_frame()
        if frame.get("method") == method and all(
            frame["params"].get(k) == v for k, v in match.items()
        ):
            return frame["params"]


async def test_tasks_run_in_order_with_fresh_processes_and_notifications(
    daemon: Daemon, tmp_path: Path
) -> None:
    log = tmp_path / "order"
    tasks = [{"argv": ["sh", "-c", f"echo $$ {i} >> {log}; echo out{i}"]} for i in range(3)]
    async with daemon.session() as peer:
        created = await peer.call("task_list.create", {"tasks": tasks, "name": "three"})
        assert created["state"] == "queued"
        assert created["total_tasks"] == 3
        done = await _until(peer, "task_list.completed")
        status = await peer.call("task_list.status", {"list_id": created["list_id"]})
    assert done["state"] == "completed"
    assert [t["state"] for t in status["tasks"]] == ["completed"] * 3
    lines = [line.split() for line in log.read_text().splitlines()]
    assert [line[1] for line in lines] == ["0", "1", "2"]
    assert len({line[0] for line in lines}) == 3  # a fresh process per task
    assert status["counts"] == {"completed": 3}


async def test_the_creator_gets_task_and_output_events(daemon: Daemon) -> None:
    async with daemon.session() as peer:
        created = await peer.call("task_list.create", {"tasks": [{"command": "echo hello"}]})
        started = await _until(peer, "task.started", list_id=created["list_id"])
        output = await _until(peer, "process.output", execution_id=started["execution_id"])
        completed = await _until(peer, "task.completed", list_id=created["list_id"])
    assert output["data"] == "hello\n"
    assert completed["status"] == "completed"
    assert completed["index"] == 0


async def test_retries_dependencies_and_on_failure(daemon: Daemon, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    flaky = f"echo x >> {counter}; [ $(wc -l < {counter}) -ge 2 ]"  # fails once, then passes
    tasks = [
        {"command": flaky, "retries": 2},
        {"command": "exit 3", "on_failure": "continue"},
        {"command": "echo never", "depends_on": [1]},
        {"command": "echo independent", "depends_on": [0]},
        {"command": "exit 4"},
        {"command": "echo after-stop"},
    ]
    async with daemon.session() as peer:
        created = await peer.call("task_list.create", {"tasks": tasks})
        done = await _until(peer, "task_list.completed")
        status = await peer.call("task_list.status", {"list_id": created["list_id"]})
    states = [t["state"] for t in status["tasks"]]
    assert states == ["completed", "failed", "skipped", "completed", "failed", "canceled"]
    assert status["tasks"][0]["attempts"] == 2
    assert status["tasks"][1]["exit_code"] == 3
    assert "dependencies" in status["tasks"][2]["error"]
    assert done["state"] == "failed"


async def test_pause_queue_pause_running_resume_and_cancel(daemon: Daemon, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    tasks = [
        {"argv": ["sh", "-c", f"while [ ! -f {gate} ]; do sleep 0.05; done; echo one"]},
        {"command": "echo two"},
        {"command": "sleep 120"},
        {"command": "echo never"},
    ]
    async with daemon.session() as peer:
        created = await peer.call("task_list.create", {"tasks": tasks})
        list_id = created["list_id"]
        first = await _until(peer, "task.started", index=0)
        paused = await peer.call("task_list.pause", {"list_id": list_id, "pause_running": True})
        assert paused["queue_paused"] is True
        assert paused["tasks"][0]["state"] == "paused"
        execution = await peer.call("status", {"execution_id": first["execution_id"]})
        assert execution["state"] == "paused"
        again = await peer.request("task_list.pause", {"list_id": list_id})
        assert again["error"]["code"] == -32004
        # let task 0 finish while the queue is held: task 1 must not start
        await peer.call("control", {"type": "RESUME", "execution_id": first["execution_id"]})
        gate.touch()
        await _until(peer, "task.completed", index=0)
        held = await peer.call("task_list.status", {"list_id": list_id})
        assert held["state"] == "paused"
        assert held["tasks"][1]["state"] == "queued"
        resumed = await peer.call("task_list.resume", {"list_id": list_id})
        assert resumed["queue_paused"] is False
        await _until(peer, "task.completed", index=1)
        third = await _until(peer, "task.started", index=2)
        canceled = await peer.call("task_list.cancel", {"list_id": list_id})
        late = await peer.request("task_list.resume", {"list_id": list_id})
    assert canceled["state"] == "canceled"
    assert [t["state"] for t in canceled["tasks"]] == [
        "completed",
        "completed",
        "canceled",
        "canceled",
    ]
    assert marked_alive(third["execution_id"]) == []
    assert late["error"]["code"] == -32004


async def test_bad_task_lists_get_precise_errors(daemon: Daemon) -> None:
    async with daemon.session() as peer:
        empty = await peer.request("task_list.create", {"tasks": []})
        forward = await peer.request(
            "task_list.create",
            {"tasks": [{"command": "true", "depends_on": [1]}, {"command": "true"}]},
        )
        stdin = await peer.request(
            "task_list.create", {"tasks": [{"command": "cat", "stdin": True}]}
        )
        unknown = await peer.request("task_list.status", {"list_id": "nope"})
        wrong = await peer.request("task_list.create", {"tasks": "echo hi"})
        hostile = await peer.call(
            "task_list.create", {"tasks": [{"argv": ["echo", "$(rm -rf /); `id` 'q\" ☃"]}]}
        )
        done = await _until(peer, "task_list.completed", list_id=hostile["list_id"])
        dup = await peer.request(
            "task_list.create", {"tasks": [{"command": "true"}], "list_id": hostile["list_id"]}
        )
    assert empty["error"]["code"] == -32602
    assert "dependencies must be earlier" in forward["error"]["message"]
    assert stdin["error"]["code"] == -32602
    assert unknown["error"]["code"] == -32003
    assert wrong["error"]["code"] == -32602
    assert done["state"] == "completed"
    assert dup["error"]["code"] == -32602
