"""Ownership: a service recovers only what a dead owner left. Another program's live service
sharing the store keeps its executions; once its heartbeat is stale they are marked lost and
their processes killed; our own records survive our recovery rounds."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from tests.processes import marked_alive

from cc_executor.protocol import ExecuteParams
from cc_executor.scheduler.service import OWNER_TTL_S, ExecutionService, Retention
from cc_executor.storage.base import ExecutionRecord
from cc_executor.storage.sqlite import SqliteStore
from cc_executor.supervisor import Supervisor

PROGRAM = Path(__file__).parent.parent / "programs" / "embedded_service.py"
WAIT_S = 30.0


async def _embedded(db: Path, owner: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROGRAM),
        str(db),
        owner,
        "sleep",
        "120",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.stdout is not None
    async with asyncio.timeout(WAIT_S):
        line = await proc.stdout.readline()
    return proc, line.decode().strip()


async def test_a_live_owner_is_left_alone_and_a_dead_one_recovered(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    other, execution_id = await _embedded(db, "embedded:other")
    try:
        store = SqliteStore(db)
        service = ExecutionService(
            supervisor=Supervisor(shell="/bin/sh"), store=store, owner="daemon:test"
        )
        async with service:
            assert await service.recover() == []  # the other program is alive (heartbeat)
            assert (await service.status(execution_id))["state"] == "running"
            other.send_signal(signal.SIGKILL)
            await other.wait()
            assert marked_alive(execution_id)  # orphaned, still running
            assert await service.recover() == []  # dead, but its heartbeat is still fresh
            await store.heartbeat("embedded:other", time.time() - OWNER_TTL_S - 1)
            await service.recover()  # (or the maintenance round got there first)
            assert service.recovered == [execution_id]
            status = await service.status(execution_id)
            mine = await service.execute(ExecuteParams(argv=["sleep", "120"]))
            await service.recorder.drain()
            assert await service.recover() == []  # never our own live execution
            await service.cancel(mine.id)
        assert status["state"] == "lost"
        assert marked_alive(execution_id) == []
        assert "daemon:test" not in await _heartbeats(db)  # a clean stop forgets the owner
    finally:
        if other.returncode is None:
            other.kill()
            await other.wait()


async def test_an_embedded_owner_whose_process_is_gone_is_dead_at_once(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    other, execution_id = await _embedded(db, "auto")
    try:
        service = ExecutionService(
            supervisor=Supervisor(shell="/bin/sh"), store=SqliteStore(db), owner="daemon:test"
        )
        async with service:
            assert await service.recover() == []  # its process is alive
            other.send_signal(signal.SIGKILL)
            await other.wait()
            # no waiting for the heartbeat to expire: the owner's pid is gone on this host
            await service.recover()  # (or the maintenance round got there first)
            assert service.recovered == [execution_id]
        assert marked_alive(execution_id) == []
    finally:
        if other.returncode is None:
            other.kill()
            await other.wait()


async def _heartbeats(db: Path) -> dict[str, float]:
    store = SqliteStore(db)
    await store.open()
    try:
        return await store.owner_heartbeats()
    finally:
        await store.close()


async def test_retention_prunes_old_finished_executions_at_start(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    await store.open()
    old = time.time() - 10 * 86400
    await store.put_execution(ExecutionRecord("old", "completed", "true", created_at=old))
    await store.put_execution(ExecutionRecord("new", "completed", "true", created_at=time.time()))
    await store.close()
    service = ExecutionService(
        supervisor=Supervisor(shell="/bin/sh"),
        store=SqliteStore(tmp_path / "store.db"),
        owner="daemon:test",
        retention=Retention(max_age_s=86400),
    )
    async with service:
        report = await service.prune()
        rows = [row["execution_id"] for row in await service.list()]
    assert rows == ["new"]
    assert report.executions in (0, 1)  # the maintenance round may have pruned it first
