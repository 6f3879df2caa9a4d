"""Durability through the real daemon process: SIGKILL, restart, recovery, replay, task lists.

Each test runs ``cc-executor server start`` in the background on a free loopback port with its
own state dir (SQLite store), kills it with SIGKILL where the scenario says so, and starts it
again on the same state dir. Processes are checked with psutil, independently of the daemon.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.polling import poll_until, poll_until_async
from tests.processes import marked_alive
from tests.redis_keys import REDIS_URL
from tests.server.conftest import Peer, Run, free_port
from websockets.asyncio.client import connect

from cc_executor.config import Settings
from cc_executor.server import daemon
from cc_executor.storage import Store, open_store
from cc_executor.tokens import load_or_create_token

START_TIMEOUT_S = 30.0
WAIT_S = 30.0


@pytest.fixture(params=["sqlite", "redis"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A daemon's settings on each store: the embedded SQLite file, or a real Redis (own prefix)."""
    extra: dict[str, Any] = {}
    if request.param == "redis":
        extra = {
            "store": "redis",
            "redis_url": REDIS_URL,
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }
    settings = Settings(
        host="127.0.0.1",
        port=free_port(),
        state_dir=tmp_path / "state",
        terminate_grace_s=1.0,
        **extra,
    )
    yield settings
    daemon.stop(settings, timeout=START_TIMEOUT_S)


def _start(settings: Settings) -> int:
    return daemon.start_background(settings, timeout=START_TIMEOUT_S)


def _kill9(pid: int) -> None:
    proc = psutil.Process(pid)
    os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=WAIT_S)


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[Peer]:
    token = load_or_create_token(settings.token_file)
    async with connect(
        f"ws://127.0.0.1:{settings.port}/ws/mcp",
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=None,
        compression=None,
    ) as ws:
        peer = Peer(ws)
        assert (await peer.next_frame())["method"] == "connected"
        yield peer


@asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[Store]:
    store = open_store(settings)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _attach_all(peer: Peer, execution_id: str, after_seq: int = 0) -> Run:
    await peer.call("attach", {"execution_id": execution_id, "after_seq": after_seq})
    run = Run(execution_id)
    await peer.wait_for(execution_id, "process.completed", run)
    return run


async def _stored_with_pgid(settings: Settings, execution_id: str, text: str) -> None:
    """Wait until the store holds the execution's pgid and an event containing ``text``."""
    async with _store(settings) as store:

        async def stored() -> bool:
            record = await store.get_execution(execution_id)
            events = await store.read_events(execution_id, limit=100)
            return record is not None and bool(record.pgid) and any(text in e.frame for e in events)

        await poll_until_async(stored, timeout=WAIT_S, what=f"{execution_id} in the store")


async def test_sigkill_restart_marks_lost_kills_leftovers_and_spares_a_stranger(
    settings: Settings, tmp_path: Path
) -> None:
    pid = _start(settings)
    async with _session(settings) as peer:
        leftover = await peer.call(
            "execute", {"command": "echo before-crash; sleep 120 & sleep 120; wait"}
        )
        reused = await peer.call("execute", {"command": "echo second; sleep 120"})
        for eid, text in (
            (leftover["execution_id"], "before-crash"),
            (reused["execution_id"], "second"),
        ):
            await _stored_with_pgid(settings, eid, text)
    # The daemon dies without any chance to clean up: its groups keep running.
    _kill9(pid)
    left_a = leftover["execution_id"]
    left_b = reused["execution_id"]
    assert len(marked_alive(left_a)) >= 2
    # Execution B's processes die meanwhile, and its recorded pgid now belongs to a stranger
    # (what pid reuse does): the stranger carries no marker and must survive the recovery.
    for proc in marked_alive(left_b):
        proc.kill()
    stranger = await asyncio.create_subprocess_exec("sleep", "120", start_new_session=True)
    try:
        async with _store(settings) as store:
            record = await store.get_execution(left_b)
            assert record is not None
            await store.put_execution(
                dataclasses.replace(record, pgid=stranger.pid, pid=stranger.pid)
            )
        _start(settings)
        assert marked_alive(left_a) == []  # killed at start, before anything new ran
        assert stranger.returncode is None
        assert psutil.Process(stranger.pid).status() != psutil.STATUS_ZOMBIE
        async with _session(settings) as peer:
            status = await peer.call("status", {"execution_id": left_a})
            assert status["state"] == "lost"
            assert status["reason"] == "daemon_restart"
            run = await _attach_all(peer, left_a)
            assert b"before-crash\n" in run.output()
            assert run.completed["status"] == "lost"
            assert run.seqs == list(range(1, len(run.seqs) + 1))
            # controlling a lost execution is an invalid state, not a crash
            frame = await peer.request("control", {"type": "CANCEL", "execution_id": left_a})
            assert frame["error"]["code"] == -32004
    finally:
        stranger.kill()
        await stranger.wait()


async def test_every_byte_replays_after_disconnect_and_restart(settings: Settings) -> None:
    _start(settings)
    # 3 MiB over many lines and one long line, on both streams.
    script = (
        "import sys\n"
        "for i in range(20000): print(f'line {i:06d} ' + 'x' * 120)\n"
        "sys.stdout.write('L' * 600000)\n"
        "sys.stderr.write('err-tail')\n"
    )
    async with _session(settings) as peer:
        started = await peer.call("execute", {"argv": ["python3", "-c", script]})
    eid = started["execution_id"]  # disconnected before reading anything
    async with _session(settings) as peer:
        live = await _attach_all(peer, eid)
    assert live.completed["status"] == "completed"
    daemon.stop(settings, timeout=START_TIMEOUT_S)
    _start(settings)
    async with _session(settings) as peer:
        replayed = await _attach_all(peer, eid)
        tail = await _attach_all(peer, eid, after_seq=replayed.seqs[-5])
        listed = await peer.call("list", {"limit": 10})
    assert replayed.output() == live.output()
    assert replayed.output("stderr") == b"err-tail"
    expected = "".join(f"line {i:06d} " + "x" * 120 + "\n" for i in range(20000)) + "L" * 600000
    assert replayed.output() == expected.encode()
    assert replayed.seqs == list(range(1, len(replayed.seqs) + 1))
    assert tail.seqs == replayed.seqs[-4:]
    assert [row["execution_id"] for row in listed["executions"]] == [eid]


async def test_a_follower_far_behind_reads_what_left_memory_back_from_the_store(
    settings: Settings,
) -> None:
    # A 64 KiB window: while nobody listens, almost all of the 3 MiB leaves memory, stored
    # events without a spool write. A late attach reads them back from SQLite or Redis.
    small = settings.model_copy(update={"event_log_memory_bytes": 64 * 1024})
    _start(small)
    script = "for i in range(25000): print(f'line {i:06d} ' + 'x' * 120)\n"
    async with _session(small) as peer:
        started = await peer.call("execute", {"argv": ["python3", "-c", script]})
        eid = started["execution_id"]
        first = Run(eid)  # live: execute subscribed this connection from the start
        await peer.wait_for(eid, "process.completed", first)
    async with _session(small) as peer:
        late = await _attach_all(peer, eid)  # after the end, before the log is forgotten
    expected = "".join(f"line {i:06d} " + "x" * 120 + "\n" for i in range(25000)).encode()
    assert first.output() == expected
    assert late.output() == expected
    assert late.seqs == first.seqs == list(range(1, len(first.seqs) + 1))


async def test_a_task_list_survives_sigkill_and_continues_at_the_interrupted_task(
    settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    gate = tmp_path / "gate"
    tasks = [
        {"argv": ["sh", "-c", f"echo zero >> {log}"]},
        {"argv": ["sh", "-c", f"echo start >> {log}; [ -f {gate} ] || sleep 120"]},
        {"argv": ["sh", "-c", f"echo two >> {log}"]},
    ]
    pid = _start(settings)
    async with _session(settings) as peer:
        created = await peer.call("task_list.create", {"tasks": tasks, "name": "crashy"})
        list_id = created["list_id"]
        await poll_until(
            lambda: log.exists() and "start" in log.read_text(), timeout=WAIT_S, what="task 1"
        )
        first_attempt = f"{list_id}.1.1"
        await _stored_with_pgid(settings, first_attempt, "process.started")
    _kill9(pid)
    assert marked_alive(first_attempt)  # orphaned by the crash
    gate.touch()
    _start(settings)
    async with _session(settings) as peer:
        status: dict[str, Any] = {}

        async def finished() -> bool:
            status.update(await peer.call("task_list.status", {"list_id": list_id}))
            return status["state"] in ("completed", "failed", "canceled")

        await poll_until_async(finished, timeout=WAIT_S, what="the list to finish")
        lost = await peer.call("status", {"execution_id": first_attempt})
    assert status["state"] == "completed", status
    assert [t["state"] for t in status["tasks"]] == ["completed"] * 3
    assert [t["attempts"] for t in status["tasks"]] == [1, 2, 1]
    assert status["tasks"][1]["execution_ids"] == [first_attempt, f"{list_id}.1.2"]
    assert lost["state"] == "lost"
    assert log.read_text().split() == ["zero", "start", "start", "two"]  # none ran twice to the end
    assert marked_alive(first_attempt) == []


async def test_a_second_daemon_on_the_same_redis_takes_over_a_dead_daemons_list(
    tmp_path: Path, redis_prefix: str
) -> None:
    shared = {
        "store": "redis",
        "redis_url": REDIS_URL,
        "redis_prefix": redis_prefix,
        "terminate_grace_s": 1.0,
        "heartbeat_s": 0.2,
        "owner_ttl_s": 2.0,
    }
    first = Settings(host="127.0.0.1", port=free_port(), state_dir=tmp_path / "a", **shared)
    second = Settings(host="127.0.0.1", port=free_port(), state_dir=tmp_path / "b", **shared)
    log = tmp_path / "log.txt"
    gate = tmp_path / "gate"
    task = {"argv": ["sh", "-c", f"echo run >> {log}; while [ ! -f {gate} ]; do sleep 0.05; done"]}
    try:
        _start(second)  # idle: the first daemon is alive, its list is not the second's business
        pid = _start(first)
        async with _session(first) as peer:
            created = await peer.call("task_list.create", {"tasks": [task, {"command": "true"}]})
        list_id = created["list_id"]
        await poll_until(log.exists, timeout=WAIT_S, what="the first attempt")
        _kill9(pid)
        gate.touch()
        async with _session(second) as peer:
            status: dict[str, Any] = {}

            async def finished() -> bool:
                status.update(await peer.call("task_list.status", {"list_id": list_id}))
                return status["state"] in ("completed", "failed", "canceled")

            await poll_until_async(finished, timeout=WAIT_S, what="the takeover")
            first_attempt = await peer.call("status", {"execution_id": f"{list_id}.0.1"})
        assert status["state"] == "completed"
        assert status["tasks"][0]["execution_ids"] == [f"{list_id}.0.1", f"{list_id}.0.2"]
        assert first_attempt["state"] == "lost"
        assert marked_alive(f"{list_id}.0.1") == []  # settled even if never recorded
        assert log.read_text().split() == ["run", "run"]
    finally:
        daemon.stop(first, timeout=START_TIMEOUT_S)
        daemon.stop(second, timeout=START_TIMEOUT_S)
