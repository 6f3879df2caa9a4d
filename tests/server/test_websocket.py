"""``/ws/mcp`` behaviour through the real daemon: real sockets, real process groups."""

from __future__ import annotations

import base64
import os
import sys
from typing import Any

import orjson
import psutil
import pytest
from tests.polling import poll_until
from tests.processes import alive, marked_alive
from tests.server.conftest import Run

PY = sys.executable


def py(code: str) -> list[str]:
    return [PY, "-c", code]


async def test_connected_notification_announces_protocol(daemon: Any) -> None:
    async with daemon.session() as peer:
        assert peer.hello["protocol_version"]
        assert "execute" in peer.hello["capabilities"]["methods"]
        assert peer.hello["session_id"]


async def test_seq_200000_lines_arrive_complete_and_in_order(daemon: Any) -> None:
    async with daemon.session() as peer:
        run = await peer.run({"command": "seq 1 200000"})
    lines = run.output().decode().splitlines()
    assert lines == [str(i) for i in range(1, 200001)]
    assert run.seqs == list(range(1, len(run.seqs) + 1))
    assert run.events[0]["method"] == "process.started"
    assert run.completed["status"] == "completed"
    assert run.completed["exit_code"] == 0


async def test_9mb_line_then_after_arrive_intact(daemon: Any) -> None:
    code = "import sys; sys.stdout.write('x' * 9_000_000 + '\\nafter\\n')"
    async with daemon.session() as peer:
        run = await peer.run({"argv": py(code)})
    out = run.output()
    assert out == b"x" * 9_000_000 + b"\nafter\n"
    for e in run.events:
        if e["method"] == "process.output":
            assert len(orjson.dumps(e["params"]["data"])) - 2 <= 64 * 1024
    pieces = [e["params"] for e in run.events if e["method"] == "process.output"]
    assert any(p["truncated"] for p in pieces)
    closing = [p for p in pieces if p.get("total_chunks")]
    assert closing, "the long line's run of pieces must be closed with total_chunks"


async def test_invalid_utf8_round_trips_exactly(daemon: Any) -> None:
    payload = b"ok \xff\xfe\x80 mixed \xc3\xa9 \xe2\x82 end\n"
    code = f"import sys; sys.stdout.buffer.write({payload!r})"
    async with daemon.session() as peer:
        run = await peer.run({"argv": py(code)})
    assert run.output() == payload
    assert any(
        e["params"].get("encoding") == "base64"
        for e in run.events
        if e["method"] == "process.output"
    )


async def test_stderr_is_kept_apart(daemon: Any) -> None:
    async with daemon.session() as peer:
        run = await peer.run({"command": "echo out; echo err >&2; exit 3"})
    assert run.output("stdout") == b"out\n"
    assert run.output("stderr") == b"err\n"
    assert run.completed["status"] == "failed"
    assert run.completed["exit_code"] == 3


async def test_timeout_kills_and_reports_partial_output(daemon: Any, program: Any) -> None:
    async with daemon.session() as peer:
        run = await peer.run({"argv": program("ticker.py", "60", "1"), "timeout": 1})
        status = await peer.call("status", {"execution_id": run.execution_id})
    assert run.output() == b"tick 0\n"
    assert run.completed["status"] == "timeout"
    assert run.completed["execution_time"] < 10
    assert status["state"] == "timeout"
    assert marked_alive(run.execution_id) == []


async def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


async def test_pause_stops_every_member_resume_continues_cancel_kills(
    daemon: Any, program: Any
) -> None:
    async with daemon.session() as peer:
        started = await peer.call("execute", {"argv": program("tree.py", "group", "--tick")})
        eid, pgid = started["execution_id"], started["pgid"]
        while True:
            event = await peer.next_event(eid)
            if event["method"] == "process.output" and "ready" in event["params"]["data"]:
                break
        members = await _group_members(pgid)
        assert len(members) == 3

        assert (await peer.call("control", {"type": "PAUSE", "execution_id": eid}))[
            "status"
        ] == "paused"
        await poll_until(
            lambda: all(p.status() == psutil.STATUS_STOPPED for p in members),
            timeout=10,
            what="every group member stopped",
        )
        assert (await peer.call("status", {"execution_id": eid}))["state"] == "paused"

        assert (await peer.call("control", {"type": "RESUME", "execution_id": eid}))[
            "status"
        ] == "resumed"
        await poll_until(
            lambda: all(p.status() != psutil.STATUS_STOPPED for p in members),
            timeout=10,
            what="every group member running again",
        )
        await peer.wait_for(eid, "process.resumed")
        # output flows again after RESUME
        while (await peer.next_event(eid))["method"] != "process.output":
            pass

        await peer.call("control", {"type": "PAUSE", "execution_id": eid})
        await peer.call("control", {"type": "CANCEL", "execution_id": eid})
        done = await peer.wait_for(eid, "process.completed")
    assert done["params"]["status"] == "canceled"
    await poll_until(lambda: not alive(members), timeout=10, what="paused group killed")
    assert marked_alive(eid) == []


async def test_cancel_kills_grandchild_that_escaped_with_setsid(daemon: Any, program: Any) -> None:
    async with daemon.session() as peer:
        started = await peer.call("execute", {"argv": program("tree.py", "setsid")})
        eid = started["execution_id"]
        text = ""
        while "ready\n" not in text:
            text += (await peer.wait_for(eid, "process.output"))["params"]["data"]
        escaped_pid = next(
            int(line.split()[1]) for line in text.splitlines() if line.startswith("escaped ")
        )
        escaped = psutil.Process(escaped_pid)
        assert os.getpgid(escaped.pid) != started["pgid"]
        await peer.call("control", {"type": "CANCEL", "execution_id": eid})
        done = await peer.wait_for(eid, "process.completed")
    assert done["params"]["status"] == "canceled"
    await poll_until(lambda: not alive([escaped]), timeout=10, what="escaped grandchild gone")
    assert marked_alive(eid) == []


async def test_disconnect_then_attach_replays_missed_events_exactly_once(daemon: Any) -> None:
    # The child prints a first line, then waits for a line on stdin, then prints the rest.
    code = (
        "import sys\n"
        "print('first', flush=True)\n"
        "sys.stdin.readline()\n"
        "for i in range(1000): print('line', i)\n"
    )
    async with daemon.session() as peer:
        started = await peer.call("execute", {"argv": py(code), "stdin": True})
        eid = started["execution_id"]
        text = ""
        while not text.endswith("first\n"):  # unbuffered children may write in pieces
            event = await peer.wait_for(eid, "process.output")
            text += event["params"]["data"]
        seen = event["params"]["seq"]
    # connection gone; the execution keeps running and finishes while nobody listens
    async with daemon.session() as peer:
        await peer.call("input", {"execution_id": eid, "data": "go\n", "eof": True})
        attach = await peer.call("attach", {"execution_id": eid, "after_seq": seen})
        assert attach["execution_id"] == eid
        run = Run(eid)
        await peer.wait_for(eid, "process.completed", run)
    seqs = run.seqs
    assert seqs == list(range(seen + 1, seen + 1 + len(seqs)))
    assert run.output() == b"".join(b"line %d\n" % i for i in range(1000))


async def test_attach_to_finished_execution_replays_everything(daemon: Any) -> None:
    async with daemon.session() as peer:
        run = await peer.run({"command": "echo one; echo two"})
    async with daemon.session() as peer:
        result = await peer.call("attach", {"execution_id": run.execution_id, "after_seq": 0})
        assert result["replayed"] == len(run.events)
        again = Run(run.execution_id)
        await peer.wait_for(run.execution_id, "process.completed", again)
    assert [e["params"]["seq"] for e in again.events] == run.seqs
    assert again.output() == b"one\ntwo\n"


async def test_on_disconnect_cancel_policy_kills_executions(daemon_factory: Any) -> None:
    with daemon_factory(on_disconnect="cancel") as d:
        async with d.session() as peer:
            started = await peer.call("execute", {"command": "sleep 60"})
        eid = started["execution_id"]
        async with d.session() as peer:
            await peer.call("attach", {"execution_id": eid})
            done = await peer.wait_for(eid, "process.completed")
        assert done["params"]["status"] == "canceled"


async def test_several_concurrent_executions_per_connection(daemon: Any) -> None:
    async with daemon.session() as peer:
        ids = []
        for i in range(5):
            started = await peer.call("execute", {"command": f"seq 1 {1000 * (i + 1)}"})
            ids.append((started["execution_id"], 1000 * (i + 1)))
        for eid, n in ids:
            run = Run(eid)
            await peer.wait_for(eid, "process.completed", run)
            assert run.output().decode().split() == [str(k) for k in range(1, n + 1)]


async def test_control_without_execution_id_uses_the_only_live_one(daemon: Any) -> None:
    async with daemon.session() as peer:
        started = await peer.call("execute", {"command": "sleep 60"})
        result = await peer.call("control", {"type": "CANCEL"})
        assert result == {"execution_id": started["execution_id"], "status": "canceled"}


async def test_list_and_status(daemon: Any) -> None:
    async with daemon.session() as peer:
        run = await peer.run({"command": "echo hi", "metadata": {"job": "x"}})
        status = await peer.call("status", {"execution_id": run.execution_id})
        listing = await peer.call("list", {"state": "completed"})
    assert status["state"] == "completed"
    assert status["exit_code"] == 0
    assert status["metadata"] == {"job": "x"}
    assert status["last_seq"] == run.seqs[-1]
    assert run.execution_id in [e["execution_id"] for e in listing["executions"]]


async def test_hook_status_reports_the_built_in_hook(daemon: Any) -> None:
    async with daemon.session() as peer:
        result = await peer.call("hook_status")
    assert result["enabled"] is True
    assert [hook["name"] for hook in result["hooks"]] == ["builtin.receipt"]
    assert result["errors"] == []


async def test_client_chosen_execution_id_is_idempotent(daemon: Any) -> None:
    async with daemon.session() as peer:
        first = await peer.call("execute", {"command": "sleep 60", "execution_id": "job-1"})
        second = await peer.call("execute", {"command": "sleep 60", "execution_id": "job-1"})
        assert first["execution_id"] == second["execution_id"] == "job-1"
        assert first["pid"] == second["pid"]
        await peer.call("control", {"type": "CANCEL", "execution_id": "job-1"})


async def test_input_writes_to_stdin(daemon: Any) -> None:
    async with daemon.session() as peer:
        started = await peer.call("execute", {"command": "cat", "stdin": True})
        eid = started["execution_id"]
        data = base64.b64encode(b"\x00bin\xff\n").decode()
        await peer.call("input", {"execution_id": eid, "data": data, "encoding": "base64"})
        await peer.call("input", {"execution_id": eid, "data": "text\n", "eof": True})
        run = Run(eid)
        await peer.wait_for(eid, "process.completed", run)
    assert run.output() == b"\x00bin\xff\ntext\n"


async def test_per_connection_limit(daemon_factory: Any) -> None:
    with daemon_factory(max_executions_per_connection=2) as d:
        async with d.session() as peer:
            await peer.call("execute", {"command": "sleep 60"})
            await peer.call("execute", {"command": "sleep 60"})
            refused = await peer.request("execute", {"command": "sleep 60"})
            assert refused["error"]["code"] == -32001
            # another connection is not affected by this one's limit
            async with d.session() as other:
                ok = await other.call("execute", {"command": "echo fine"})
                assert ok["status"] == "started"


BAD_INPUT: list[tuple[str, Any, int]] = [
    ("not json", "this is not json", -32700),
    ("batch array", '[{"jsonrpc":"2.0","id":1,"method":"list"}]', -32600),
    ("no jsonrpc", '{"id":1,"method":"list"}', -32600),
    ("unknown method", '{"jsonrpc":"2.0","id":1,"method":"nope"}', -32601),
    (
        "wrong param type",
        '{"jsonrpc":"2.0","id":1,"method":"execute","params":{"command":42}}',
        -32602,
    ),
    (
        "timeout as string",
        '{"jsonrpc":"2.0","id":1,"method":"execute","params":{"command":"x","timeout":"5"}}',
        -32602,
    ),
    (
        "unknown execution",
        '{"jsonrpc":"2.0","id":1,"method":"status","params":{"execution_id":"nope"}}',
        -32003,
    ),
    (
        "control unknown type",
        '{"jsonrpc":"2.0","id":1,"method":"control","params":{"type":"EXPLODE","execution_id":"x"}}',
        -32602,
    ),
    (
        "2 MiB frame",
        '{"jsonrpc":"2.0","id":1,"method":"list","x":"' + "a" * (2 << 20) + '"}',
        -32001,
    ),
]


@pytest.mark.parametrize(
    ("raw", "code"), [(r, c) for _, r, c in BAD_INPUT], ids=[n for n, _, _ in BAD_INPUT]
)
async def test_bad_input_gets_precise_error_and_nothing_else_breaks(
    daemon: Any, raw: str, code: int
) -> None:
    async with daemon.session() as peer:
        code_ = "import sys; sys.stdin.readline(); print('survivor', flush=True)"
        bystander = await peer.call("execute", {"argv": py(code_), "stdin": True})
        await peer.send_raw(raw)
        # the id is echoed when it could be read; refused frames and batches answer with null
        frame = await peer.response(None if raw.startswith(("[", "this")) or code == -32001 else 1)
        assert frame["error"]["code"] == code, frame
        # the connection still works, and the other execution still delivers its output
        await peer.call("input", {"execution_id": bystander["execution_id"], "data": "x\n"})
        run = Run(bystander["execution_id"])
        await peer.wait_for(bystander["execution_id"], "process.completed", run)
        assert run.output() == b"survivor\n"


async def test_resume_on_running_execution_is_invalid_state(daemon: Any) -> None:
    async with daemon.session() as peer:
        started = await peer.call("execute", {"command": "sleep 60"})
        eid = started["execution_id"]
        frame = await peer.request("control", {"type": "RESUME", "execution_id": eid})
        assert frame["error"]["code"] == -32004
        assert frame["error"]["data"]["state"] == "running"
        await peer.call("control", {"type": "CANCEL", "execution_id": eid})
        await peer.wait_for(eid, "process.completed")
        frame = await peer.request("control", {"type": "PAUSE", "execution_id": eid})
        assert frame["error"]["code"] == -32004


async def test_hostile_prompt_strings_never_reach_a_shell(daemon: Any, tmp_path: Any) -> None:
    target = tmp_path / "pwned"
    hostile = f"$(touch {target}); `touch {target}`; ' \" ; touch {target} \n --help"
    async with daemon.session() as peer:
        run = await peer.run({"argv": ["printf", "%s", hostile]})
    assert run.output().decode() == hostile
    assert not target.exists()


async def test_a_consumer_that_stops_reading_never_holds_the_child_back(daemon: Any) -> None:
    size = 40 * 1024 * 1024
    code = (
        "import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(40 * 1024): sys.stdout.write(line)"
    )
    async with daemon.session(max_queue=1) as slow, daemon.session() as fast:
        started = await slow.call("execute", {"argv": py(code)})
        eid = started["execution_id"]
        # `slow` reads nothing while another connection watches the run to its end
        await fast.call("attach", {"execution_id": eid, "after_seq": 0})
        watched = Run(eid)
        await fast.wait_for(eid, "process.completed", watched)
        assert watched.completed["status"] == "completed"
        assert len(watched.output()) == size
        # the stalled consumer then gets every event, in order, none lost
        stalled = Run(eid)
        await slow.wait_for(eid, "process.completed", stalled)
    assert stalled.seqs == watched.seqs
    assert stalled.output() == watched.output()


def test_live_started_forgets_finished_executions() -> None:
    # One `execute` calls live_started(); it must stay proportional to what is live, not to
    # everything the connection ever started.
    from types import SimpleNamespace

    from cc_executor.server.websocket import Connection

    executions = {
        "live": SimpleNamespace(id="live", finished=False),
        "done": SimpleNamespace(id="done", finished=True),
    }
    service = SimpleNamespace(live=executions.get)
    conn = Connection(websocket=None, service=service, task_lists=None, max_executions=4)  # type: ignore[arg-type]
    conn.started.update({"live", "done", "forgotten"})
    assert [e.id for e in conn.live_started()] == ["live"]
    assert conn.started == {"live"}


async def test_send_ready_then_follow_sends_each_event_once_in_order() -> None:
    # The read loop sends what the log holds right after the `execute` response, then hands
    # over to a follower from the last seq it sent: no duplicate, no gap, even while the log
    # grows during the inline sends and past the inline bound.
    import asyncio
    from types import SimpleNamespace

    from cc_executor.server.websocket import INLINE_EVENTS_MAX, Connection
    from cc_executor.supervisor.eventlog import EventLog

    log = EventLog("e1")
    sent: list[int] = []
    grown = asyncio.Event()  # the fake has stopped appending: the log may be closed now

    class FakeSocket:
        async def send_text(self, frame: str) -> None:
            sent.append(orjson.loads(frame)["params"]["seq"])
            if log.last_seq < 3 * INLINE_EVENTS_MAX:
                log.append("process.output", {"n": log.last_seq})  # grows mid-send
            else:
                grown.set()
            await asyncio.sleep(0)  # a real send yields to the loop; so does this one

    for n in range(INLINE_EVENTS_MAX + 4):
        log.append("process.output", {"n": n})
    execution = SimpleNamespace(id="e1", log=log)
    service = SimpleNamespace(follow=lambda _eid, after_seq: log.follow(after_seq))
    conn = Connection(websocket=FakeSocket(), service=service, task_lists=None, max_executions=4)  # type: ignore[arg-type]
    async with asyncio.TaskGroup() as tasks:
        conn._tasks = tasks
        await conn.send_ready_then_follow(execution, 0)  # type: ignore[arg-type]
        assert sent == list(range(1, INLINE_EVENTS_MAX + 1))  # bounded inline part
        async with asyncio.timeout(10):
            await grown.wait()
        log.append("process.completed", {})  # while the follower may still be catching up
        log.close()
    assert sent == list(range(1, log.last_seq + 1))


async def test_output_past_the_memory_window_replays_whole_from_store_and_spool(
    daemon_factory: Any,
) -> None:
    # A 64 KiB window: most of 4 MiB leaves memory while it streams, either because the store
    # holds it (read back from SQLite) or, while the store is behind, through the spool.
    code = "import sys\nfor i in range(60000): sys.stdout.write('%08d %s\\n' % (i, 'x' * 60))\n"
    expected = b"".join(b"%08d %s\n" % (i, b"x" * 60) for i in range(60000))
    with daemon_factory(event_log_memory_bytes=64 * 1024) as d:
        async with d.session() as peer:
            run = await peer.run({"argv": py(code)})
        assert run.output() == expected
        for _ in range(2):  # right away, and again once the finished log has left memory
            async with d.session() as peer:
                attach = await peer.call("attach", {"execution_id": run.execution_id})
                assert attach["replayed"] == len(run.events)
                again = Run(run.execution_id)
                await peer.wait_for(run.execution_id, "process.completed", again)
            assert again.seqs == run.seqs
            assert again.output() == expected
