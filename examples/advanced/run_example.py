"""Advanced: a task list on a daemon, with Claude and shell tasks, pause/resume and reattach.

Talks JSON-RPC to a running daemon's WebSocket door (``/ws/mcp``, docs/protocol.md) directly,
the way an orchestrator in any language would:

1. ``task_list.create``: a shell task writes ``words.txt``, a Claude task reads and sorts it,
   a second shell task reports progress in steps. Tasks run one by one, each a fresh process.
2. ``task_list.pause`` right away: the task that is running finishes, the next one waits;
   ``task_list.resume`` lets the queue go on.
3. While the last task runs, a second connection follows its output, drops the connection,
   reconnects and ``attach``-es with ``after_seq``: it gets exactly the output it missed.
4. ``task_list.completed`` ends the list; ``task_list.status`` shows every task.

Needs a daemon (``cc-executor server start``) and, for the Claude task, the Claude Code CLI on
the daemon's machine. The token is read from the daemon's state dir (as the CLI does) unless
``--token-file`` names another file.

    python examples/advanced/run_example.py
    python examples/advanced/run_example.py --server ws://127.0.0.1:8003/ws/mcp --workdir ./demo
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from cc_executor.config import Settings
from cc_executor.tokens import read_token

DEFAULT_SERVER = "ws://127.0.0.1:8003/ws/mcp"
WAIT_S = 300.0  # longest wait for any one answer or notification from the daemon
LIST_TIMEOUT_PER_TASK_S = 240.0

WRITE_WORDS = "printf 'delta\\nalpha\\ncharlie\\nbravo\\n' > words.txt && wc -l < words.txt"
SORT_PROMPT = (
    "Read words.txt and answer with its words sorted alphabetically, on one line, separated by "
    "single spaces. Nothing else."
)
STEPS = 'for n in 1 2 3; do echo "step $n of 3"; sleep 0.5; done'


class RpcError(Exception):
    """A JSON-RPC error answer: ``code``, ``message`` and ``data`` as the daemon sent them."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error


class Rpc:
    """One JSON-RPC connection: ``call`` waits for its answer; notifications are kept in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.notifications: deque[dict[str, Any]] = deque()

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, token: str) -> AsyncIterator[Rpc]:
        headers = {"Authorization": f"Bearer {token}"}
        async with connect(url, additional_headers=headers, max_size=None) as ws:
            rpc = cls(ws)
            hello = await rpc._receive()
            assert hello.get("method") == "connected", hello
            yield rpc

    async def _receive(self) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_S):
            message: dict[str, Any] = json.loads(await self.ws.recv())
        return message

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        request_id = next(self.ids)
        await self.ws.send(
            json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        )
        while True:
            message = await self._receive()
            if "method" in message:  # a notification that arrived before our answer
                self.notifications.append(message)
            elif message.get("id") == request_id:
                if "error" in message:
                    raise RpcError(message["error"])
                result: dict[str, Any] = message["result"]
                return result

    async def notification(self) -> dict[str, Any]:
        """The next notification: one that came while waiting for an answer, else a new one."""
        if self.notifications:
            return self.notifications.popleft()
        return await self._receive()


class Printer:
    """Shows a list's notifications: task progress, shell output lines, Claude's actions."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        # Claude's own stdout is stream-json; its agent.event notifications say it better.
        self.agent_tasks = {i for i, task in enumerate(tasks) if "agent" in task}
        self.task_of: dict[str, int] = {}  # execution id -> task index

    def show(self, method: str, params: dict[str, Any]) -> None:
        index = self.task_of.get(str(params.get("execution_id")))
        if method == "task.started":
            self.task_of[params["execution_id"]] = params["index"]
            print(f"[task {params['index']}] started ({params['execution_id']})")
        elif method == "task.completed":
            print(f"[task {params['index']}] {params['status']} (exit code {params['exit_code']})")
        elif method == "process.output" and index is not None and index not in self.agent_tasks:
            if params["type"] == "stdout" and params.get("encoding") != "base64":
                for line in params["data"].splitlines():
                    print(f"[task {index}] {line}")
        elif method == "agent.event" and params["kind"] == "tool_call":
            print(f"[task {index}] claude calls {params['name']}: {json.dumps(params['input'])}")
        elif method == "agent.event" and params["kind"] == "result":
            cost = params.get("total_cost_usd") or 0
            print(f"[task {index}] claude answers: {params['result']} (${cost:.4f})")


async def follow_with_reattach(url: str, token: str, execution_id: str) -> None:
    """Read one line of an execution, drop the connection, reattach after the last seq seen."""
    last_seq = 0
    async with Rpc.open(url, token) as watcher:
        await watcher.call("attach", execution_id=execution_id, after_seq=0)
        while True:
            event = await watcher.notification()
            params = event["params"]
            if params.get("execution_id") != execution_id:
                continue
            last_seq = params.get("seq", last_seq)
            if event["method"] == "process.output":
                for line in params["data"].splitlines():
                    print(f"[watcher] {line} (seq {last_seq})")
                print("[watcher] dropping the connection")
                break
    # The connection is gone; the execution goes on. A new one picks up after last_seq.
    async with Rpc.open(url, token) as watcher:
        attached = await watcher.call("attach", execution_id=execution_id, after_seq=last_seq)
        print(f"[watcher] reattached after seq {last_seq}; last seq now {attached['last_seq']}")
        while True:
            event = await watcher.notification()
            params = event["params"]
            if params.get("execution_id") != execution_id:
                continue
            if event["method"] == "process.output":
                for line in params["data"].splitlines():
                    print(f"[watcher] {line} (seq {params['seq']})")
            elif event["method"] == "process.completed":
                print(f"[watcher] {params['status']}, nothing missed, nothing twice")
                return


async def run(url: str, token: str, workdir: Path) -> int:
    tasks: list[dict[str, Any]] = [
        {"command": WRITE_WORDS, "cwd": str(workdir)},
        {
            "agent": "claude",
            "prompt": SORT_PROMPT,
            "cwd": str(workdir),
            "agent_options": {"allowed_tools": ["Read"]},
        },
        {"command": STEPS, "cwd": str(workdir)},
    ]
    printer = Printer(tasks)
    async with Rpc.open(url, token) as rpc:
        created = await rpc.call(
            "task_list.create",
            name="advanced example",
            tasks=tasks,
            timeout_per_task=LIST_TIMEOUT_PER_TASK_S,
            on_failure="stop",
        )
        list_id = created["list_id"]
        print(f"created task list {list_id} with {created['total_tasks']} tasks")

        # Hold the queue: whatever runs now finishes, nothing new starts until resume.
        paused = await rpc.call("task_list.pause", list_id=list_id)
        print(f"paused: queue_paused={paused['queue_paused']}")
        running = {t["index"] for t in paused["tasks"] if t["state"] == "running"}
        while running:
            event = await rpc.notification()
            printer.show(event["method"], event["params"])
            if event["method"] == "task.completed":
                running.discard(event["params"]["index"])
        held = await rpc.call("task_list.status", list_id=list_id)
        counts = held["counts"]
        print(
            f"while paused: {counts.get('queued', 0)} task(s) wait, {counts.get('running', 0)} run"
        )

        resumed = await rpc.call("task_list.resume", list_id=list_id)
        print(f"resumed: queue_paused={resumed['queue_paused']}")
        while True:
            event = await rpc.notification()
            method, params = event["method"], event["params"]
            printer.show(method, params)
            if method == "task.started" and params["index"] == len(tasks) - 1:
                await follow_with_reattach(url, token, params["execution_id"])
            elif method == "task_list.completed":
                print(f"task list {params['state']}: {params['counts']}")
                break

        final = await rpc.call("task_list.status", list_id=list_id)
        for task in final["tasks"]:
            print(f"  task {task['index']}: {task['state']} ({task['execution_id']})")
    return 0 if final["state"] == "completed" else 1


def daemon_token(token_file: Path | None) -> str:
    """The daemon's bearer token: ``CC_EXECUTOR_TOKEN``, else its token file."""
    settings = Settings()
    if settings.token is not None:
        return settings.token.get_secret_value()
    path = token_file or settings.token_file
    token = read_token(path)
    if token is None:
        raise SystemExit(f"no token in {path}: start the daemon first, or pass --token-file")
    return token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"daemon URL ({DEFAULT_SERVER})")
    parser.add_argument("--token-file", type=Path, help="default: the daemon's state dir")
    parser.add_argument("--workdir", type=Path, help="where the tasks work (default: a temp dir)")
    args = parser.parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="cc-advanced-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"working in {workdir}")
    return asyncio.run(run(args.server, daemon_token(args.token_file), workdir))


if __name__ == "__main__":
    sys.exit(main())
