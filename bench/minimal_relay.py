"""The least a daemon on the project's stack must do, for ``bench/floor.py`` to measure.

FastAPI + uvicorn (plain asyncio loop, no compression, as the daemon runs them) and one
WebSocket route speaking just enough of PROTOCOL.md for ``bench.Session``: ``connected``,
``execute`` (argv, new session), ``process.output`` as orjson text frames of up to 64 KiB
read straight from the pipes, ``process.completed``, and ``control`` CANCEL (SIGTERM + SIGCONT
to the group, and to tree members that left it, as ``bench.py``'s direct cancel does; the tree
is walked the cheapest way before the signals). No token, no validation, no event log, no
store, no sweep, no hooks: whatever cc-executor does
beyond this is its own overhead; what this costs is the stack's and the machine's.

    python bench/minimal_relay.py PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import warnings
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

CHUNK = 64 * 1024
app = FastAPI()


async def _pump(ws: WebSocket, eid: str, stream: asyncio.StreamReader, name: str) -> None:
    while chunk := await stream.read(CHUNK):
        params = {"execution_id": eid, "stream": name, "data": chunk.decode(errors="replace")}
        await ws.send_text(
            orjson.dumps({"jsonrpc": "2.0", "method": "process.output", "params": params}).decode()
        )


async def _run(ws: WebSocket, eid: str, proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    assert proc.stderr is not None
    await asyncio.gather(
        _pump(ws, eid, proc.stdout, "stdout"), _pump(ws, eid, proc.stderr, "stderr")
    )
    code = await proc.wait()
    status = "completed" if code == 0 else "failed" if code > 0 else "canceled"
    params = {"execution_id": eid, "status": status, "exit_code": code}
    await ws.send_text(
        orjson.dumps({"jsonrpc": "2.0", "method": "process.completed", "params": params}).decode()
    )


def _descendants(pid: int) -> list[int]:
    """The pids of ``pid``'s tree from ``/proc/*/task/*/children`` (psutil's walk lists every
    process: 4.7x of the direct cancel on its own)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{tid}/children", "rb") as f:
                    children = [int(c) for c in f.read().split()]
                found += children
                todo += children
    return found


def _cancel(proc: asyncio.subprocess.Process) -> None:
    tree = _descendants(proc.pid)  # before the signal: afterwards its members are reparented
    for sig in (signal.SIGTERM, signal.SIGCONT):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    for pid in tree:
        with contextlib.suppress(OSError):
            if os.getpgid(pid) != proc.pid:
                os.kill(pid, signal.SIGTERM)
                os.kill(pid, signal.SIGCONT)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.websocket("/ws/mcp")
async def relay(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text('{"jsonrpc":"2.0","method":"connected","params":{}}')
    procs: dict[str, asyncio.subprocess.Process] = {}
    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            msg: dict[str, Any] = orjson.loads(await ws.receive_text())
            result: dict[str, Any]
            if msg["method"] == "execute":
                proc = await asyncio.create_subprocess_exec(
                    *msg["params"]["argv"],
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    start_new_session=True,
                )
                eid = f"e{proc.pid}"
                procs[eid] = proc
                result = {"execution_id": eid, "pid": proc.pid}
                task = asyncio.create_task(_run(ws, eid, proc))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif msg["method"] == "hook_status":  # a round trip doing nothing (bench/floor.py)
                result = {"hooks": []}
            else:  # control CANCEL
                _cancel(procs[msg["params"]["execution_id"]])
                result = {"ok": True}
            await ws.send_text(
                orjson.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).decode()
            )
    except WebSocketDisconnect:
        pass


def loop_factory() -> asyncio.AbstractEventLoop:
    """The plain asyncio loop with a pidfd child watcher, as the daemon's (no thread a child).

    The same lines as ``cc_executor.server.daemon.loop_factory``, on purpose: the relay imports
    nothing of cc_executor, whose modules would count in the floor it measures (idle RSS).
    """
    loop = asyncio.SelectorEventLoop()
    if sys.version_info < (3, 12):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            watcher = asyncio.PidfdChildWatcher()
            watcher.attach_loop(loop)
            asyncio.set_child_watcher(watcher)
    return loop


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="minimal_relay:loop_factory",
        ws_per_message_deflate=False,
        log_level="warning",
    )
