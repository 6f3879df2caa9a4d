"""Durable task lists through the Python API, embedded: shell tasks on the real services.

``cc_execute_task_list(durable=True)`` stores the list and its executions (the store of
``settings``), returns the usual per-task results plus ``list_id``; ``resume`` finishes a list
whose program was SIGKILLed (the interrupted task re-runs as a new attempt, completed ones do
not) and refuses a list whose owner is alive. Every wait is bounded; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import PROGRAMS
from tests.processes import marked_alive

from cc_executor.api import (
    TaskEvent,
    TaskListResults,
    acc_execute_list,
    aresume,
    cc_execute_task_list,
    export_execution_history,
    resume,
)
from cc_executor.config import Settings
from cc_executor.errors import ExecutionNotFound, InvalidParams, InvalidTransition
from cc_executor.storage.sqlite import SqliteStore

LIST_TIMEOUT_S = 30.0  # a list of a few shell commands takes well under a second
PROGRAM_TIMEOUT_S = 30.0  # the embedded program starting up and reaching task 1


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", reports_dir=tmp_path / "reports")


async def test_embedded_shell_list_end_to_end(settings: Settings, tmp_path: Path) -> None:
    seen: list[TaskEvent] = []
    async with asyncio.timeout(LIST_TIMEOUT_S):
        results = await acc_execute_list(
            [
                {"command": "echo one"},
                {"command": "echo oops >&2; exit 3", "on_failure": "continue"},
                {"command": "printf two", "depends_on": [0]},
            ],
            durable=True,
            name="shell trio",
            settings=settings,
            progress_callback=seen.append,
        )
    assert isinstance(results, TaskListResults)
    assert results.state == "failed"  # a task failed (and the list went on)
    assert [r.state for r in results] == ["completed", "failed", "completed"]
    assert [r.exit_code for r in results] == [0, 3, 0]
    assert [r.success for r in results] == [True, False, True]
    assert [r.text for r in results] == ["one\n", "", "two"]
    assert results[1].error is not None
    assert "oops" in results[1].error
    assert [r.task for r in results] == ["echo one", "echo oops >&2; exit 3", "printf two"]
    # Progress: the list's notifications around each task's own events.
    methods = [e.method for e in seen]
    assert methods[0] == "task.started"
    assert methods[-1] == "task_list.completed"
    assert methods.count("task.started") == 3
    assert methods.count("process.completed") == 3
    assert "process.output" in methods
    # Durable: the list and every execution are in the store this process used.
    text = await export_execution_history("json", settings=settings)
    for result in results:
        assert result.execution_id in text
    store = SqliteStore(settings.store_path)
    await store.open()
    try:
        stored = await store.get_task_list(results.list_id)
        assert stored is not None
        assert stored.state == "failed"
        assert stored.name == "shell trio"
        record = await store.get_execution(results[0].execution_id)
        assert record is not None
        assert record.state == "completed"
    finally:
        await store.close()


async def test_stop_on_failure_marks_the_rest_skipped(settings: Settings) -> None:
    async with asyncio.timeout(LIST_TIMEOUT_S):
        results = await acc_execute_list(
            [{"command": "exit 1"}, {"command": "echo never"}], durable=True, settings=settings
        )
    assert [r.state for r in results] == ["failed", "skipped"]
    assert not results[0].success
    assert results[1].skipped
    assert results[1].execution_id == ""
    assert results.state == "failed"


async def test_retries_run_fresh_attempts(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "second"
    command = f"if [ -e {marker} ]; then echo ok; else touch {marker}; exit 1; fi"
    async with asyncio.timeout(LIST_TIMEOUT_S):
        results = await acc_execute_list(
            [{"command": command, "retries": 1}], durable=True, settings=settings
        )
    assert results[0].success
    assert results[0].text == "ok\n"
    (row,) = results.status["tasks"]
    assert row["attempts"] == 2
    assert results[0].execution_id == row["execution_ids"][-1]


async def test_resume_of_a_finished_list_returns_its_results(settings: Settings) -> None:
    async with asyncio.timeout(LIST_TIMEOUT_S):
        first = await acc_execute_list([{"command": "echo hi"}], durable=True, settings=settings)
        again = await aresume(first.list_id, settings=settings)
    assert again.list_id == first.list_id
    assert [r.text for r in again] == ["hi\n"]
    assert [r.execution_id for r in again] == [r.execution_id for r in first]
    assert again.state == "completed"


async def test_resume_of_an_unknown_list(settings: Settings) -> None:
    with pytest.raises(ExecutionNotFound):
        await aresume("no-such-list", settings=settings)


@pytest.mark.parametrize(
    ("tasks", "keywords", "message"),
    [
        ([{"command": "true", "task": "both"}], {}, "either 'task'"),
        ([{"retries": 1}], {}, "either 'task'"),
        (["x"], {"json_mode": True}, "json_mode cannot be used with durable=True"),
        (["x"], {"validation_prompt": "ok?"}, "validation_prompt"),
        (["x"], {"no_such_option": 1}, "invalid Claude options"),
        ([{"command": "true", "depends_on": [0]}], {}, "dependencies must be earlier"),
    ],
)
async def test_invalid_durable_lists_are_refused_before_running(
    settings: Settings, tasks: list[object], keywords: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidParams, match=message):
        await acc_execute_list(tasks, durable=True, settings=settings, **keywords)  # type: ignore[arg-type]
    assert not settings.store_path.exists()  # nothing was stored


async def test_list_keywords_need_durable(settings: Settings) -> None:
    with pytest.raises(InvalidParams, match="need durable=True"):
        await acc_execute_list(["x"], list_id="abc", settings=settings)


def test_blocking_durable_list(settings: Settings) -> None:
    results = cc_execute_task_list([{"command": "echo sync"}], durable=True, settings=settings)
    assert isinstance(results, TaskListResults)
    assert results[0].text == "sync\n"
    assert resume(results.list_id, settings=settings)[0].text == "sync\n"


async def _read_ready(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    async with asyncio.timeout(PROGRAM_TIMEOUT_S):
        line = await process.stdout.readline()
    assert line == b"ready\n", line


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


async def test_a_killed_program_s_list_is_resumed(settings: Settings, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    list_id = "killed-list"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROGRAMS / "durable_list.py"),
        str(settings.state_dir),
        list_id,
        str(work),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        await _read_ready(process)  # task 0 done, task 1 running (and blocked)
        # Its owner is alive: this process may not take the list over.
        with pytest.raises(InvalidTransition, match="still alive") as refused:
            await aresume(list_id, settings=settings)
        assert refused.value.data["list_id"] == list_id
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        async with asyncio.timeout(PROGRAM_TIMEOUT_S):
            await process.wait()
    assert process.returncode == -signal.SIGKILL
    first_attempt = f"{list_id}.1.1"
    assert marked_alive(first_attempt)  # the orphaned task is still running (its own session)
    # The dead program's heartbeat ages out after owner_ttl_s; age it instead of waiting.
    store = SqliteStore(settings.store_path)
    await store.open()
    try:
        record = await store.get_task_list(list_id)
        assert record is not None
        assert record.owner is not None
        assert record.owner.startswith("embedded:")
        await store.heartbeat(record.owner, time.time() - settings.owner_ttl_s - 1)
    finally:
        await store.close()
    (work / "release").touch()
    seen: list[str] = []
    async with asyncio.timeout(LIST_TIMEOUT_S):
        results = await aresume(
            list_id, settings=settings, progress_callback=lambda e: seen.append(e.method)
        )
    assert results.state == "completed"
    assert [r.state for r in results] == ["completed", "completed", "completed"]
    assert [r.text for r in results] == ["zero\n", "one\n", "two\n"]
    # Side effects: task 0 ran once, task 1 twice (the interrupted attempt and the new one),
    # task 2 once.
    assert [_lines(work / f"count{i}") for i in range(3)] == [1, 2, 1]
    task1 = results.status["tasks"][1]
    assert task1["attempts"] == 2
    assert task1["execution_ids"] == [first_attempt, f"{list_id}.1.2"]
    assert results[1].execution_id == f"{list_id}.1.2"
    assert results[0].execution_id == f"{list_id}.0.1"
    assert seen.count("task.started") == 2  # tasks 1 and 2 ran here; task 0 did not
    assert not marked_alive(first_attempt)  # recovery killed the orphan
    history = await export_execution_history("json", settings=settings, status="lost")
    assert first_attempt in history  # the interrupted attempt is recorded as lost
