"""The composition root: what `create_app` sets up around the doors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from tests.server.conftest import free_port, run_daemon


async def test_spool_left_by_a_crashed_daemon_is_removed_at_start(tmp_path: Path) -> None:
    # a crashed daemon on the same state dir and port left its spool; another port's is not ours
    port = free_port()
    ours = tmp_path / "state" / f"spool-{port}"
    theirs = tmp_path / "state" / "spool-1"
    for directory in (ours, theirs):
        directory.mkdir(parents=True)
        (directory / "old-execution-abc.events").write_bytes(b"stale")
    with run_daemon(tmp_path, port=port) as daemon:
        async with httpx.AsyncClient(base_url=daemon.http) as http:
            assert (await http.get("/health")).status_code == 200
        assert list(ours.iterdir()) == []
        assert [p.name for p in theirs.iterdir()] == ["old-execution-abc.events"]


async def test_health_reports_running_executions(daemon: Any) -> None:
    async with daemon.session() as peer:
        started = await peer.call("execute", {"command": "sleep 30"})
        async with httpx.AsyncClient(base_url=daemon.http) as http:
            health = (await http.get("/health")).json()
        assert health["status"] == "ok"
        assert health["running_executions"] == 1
        await peer.call("control", {"type": "CANCEL", "execution_id": started["execution_id"]})


def test_an_idle_app_does_not_import_what_only_some_requests_need(tmp_path: Path) -> None:
    # Idle RSS is a target (docs/benchmarks.md): the client stack, the task API and tenacity
    # (retries) are loaded by the requests that use them, not by create_app.
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from cc_executor.config import Settings\n"
        "from cc_executor.server.app import create_app\n"
        f"create_app(Settings(state_dir={str(tmp_path / 'state')!r}, port=1))\n"
        "heavy = ('cc_executor.client', 'cc_executor.api.execute', 'tenacity', 'mcp',"
        " 'websockets.asyncio.client')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.splitlines()[-1:] == ["[]"], done.stdout + done.stderr
