"""Hooks through the real daemon: a Python hook refuses executions, a command hook sees every
finished one, a broken hook file is reported, and a task's pre_task refusal fails only it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.polling import poll_until
from tests.server.conftest import run_daemon

POLICY = """
from cc_executor.scheduler.hooks import HookResult, hook


@hook(required=True, timeout_s=5)
def no_forbidden(ctx):
    if "forbidden" in (ctx.command or ""):
        return HookResult(proceed=False, message="forbidden word")
    return HookResult()


HOOKS = {"pre_execution": no_forbidden, "pre_task": no_forbidden}
"""


def _hooks_dir(tmp_path: Path, seen: Path) -> Path:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "policy.py").write_text(POLICY)
    (hooks / "broken.py").write_text("HOOKS = {\n")
    writer = f"import sys; open({str(seen)!r}, 'a').write(sys.stdin.read().strip() + '\\n')"
    (hooks / "hooks.json").write_text(
        json.dumps(
            {
                "hooks": [
                    {
                        "name": "audit",
                        "argv": [sys.executable, "-c", writer],
                        "events": ["post_execution"],
                        "timeout_s": 10,
                    }
                ]
            }
        )
    )
    return hooks


async def test_hooks_refuse_audit_and_report(tmp_path: Path) -> None:
    seen = tmp_path / "seen.jsonl"
    with run_daemon(tmp_path, hooks_dir=_hooks_dir(tmp_path, seen)) as daemon:
        async with daemon.session() as peer:
            status = await peer.call("hook_status")
            refused = await peer.request("execute", {"command": "echo forbidden"})
            run = await peer.run({"command": "echo allowed"})
            listed: dict[str, Any] = await peer.call(
                "task_list.create",
                {
                    "tasks": [{"command": "echo forbidden"}, {"command": "echo fine"}],
                    "on_failure": "continue",
                },
            )
            while True:
                frame = await peer.next_frame()
                if frame.get("method") == "task_list.completed":
                    break
            final = await peer.call("task_list.status", {"list_id": listed["list_id"]})
            await poll_until(
                lambda: seen.exists() and run.execution_id in seen.read_text(),
                timeout=30,
                what="the post_execution command hook",
            )
            later = await peer.call("hook_status")
    names = {hook["name"] for hook in status["hooks"]}
    assert {"builtin.receipt", "audit"} <= names
    assert any("no_forbidden" in name for name in names)
    assert any("broken.py" in str(error) for error in status["errors"])
    assert refused["error"]["code"] == -32002
    assert "forbidden word" in refused["error"]["message"]
    assert run.output() == b"allowed\n"
    contexts = [json.loads(line) for line in seen.read_text().splitlines()]
    mine = next(c for c in contexts if c["execution_id"] == run.execution_id)
    assert mine["event"] == "post_execution"
    assert mine["state"] == "completed"
    assert mine["exit_code"] == 0
    assert [t["state"] for t in final["tasks"]] == ["failed", "completed"]
    assert "pre_task" in final["tasks"][0]["error"]
    assert final["state"] == "failed"
    assert later["last_runs"]
