"""WebSocketClient against a scripted fake daemon: correlation, routing, errors, reconnect,
bounded buffers, the earlier ``execute_command`` shape, JSON ping."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.client.fake_daemon import (
    TOKEN,
    WAIT_S,
    FakeConn,
    FakeDaemon,
    output_params,
    script,
    serve_script,
)

from cc_executor.client import (
    ClientClosed,
    Completed,
    ConnectionLost,
    DaemonUnreachable,
    Event,
    ExecutionHandle,
    Gap,
    HandshakeRefused,
    Output,
    Started,
    WebSocketClient,
)
from cc_executor.errors import (
    CCExecutorError,
    ExecutionNotFound,
    InvalidTransition,
    LimitReached,
)


def client_for(fake: FakeDaemon, **kw: Any) -> WebSocketClient:
    return WebSocketClient(url=fake.url, token=kw.pop("token", TOKEN), **kw)


async def collect(handle: ExecutionHandle) -> list[Event]:
    async with asyncio.timeout(WAIT_S):
        return [event async for event in handle]


async def test_execute_streams_typed_events_and_exact_output(fake: FakeDaemon) -> None:
    pieces = [b"Hello, ", "Wörld".encode()[:2], "Wörld".encode()[2:] + b"!\n"]
    serve_script(fake, lambda eid: script(eid, pieces, stderr=b"warn\xff\n"))
    async with client_for(fake) as client:
        handle = await client.execute("echo hi", timeout=5, cwd="/tmp", env={"A": "1"})
        events = await collect(handle)
        _, params = await fake.next_request("execute")

    assert params["command"] == "echo hi"
    assert params["timeout"] == 5
    assert params["cwd"] == "/tmp"
    assert params["env"] == {"A": "1"}
    assert params["execution_id"] == handle.execution_id
    assert "argv" not in params  # None-valued params are not sent
    assert isinstance(events[0], Started)
    assert events[0].pid == 100
    assert isinstance(events[-1], Completed)
    assert events[-1].exit_code == 0
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    outputs = [e for e in events if isinstance(e, Output)]
    assert isinstance(outputs[1].data, bytes)  # the split character arrived base64-encoded
    assert handle.stdout == "Hello, Wörld!\n".encode()
    assert handle.stderr == b"warn\xff\n"
    assert handle.done
    assert handle.completed == events[-1]


async def test_wait_and_output_drain_without_iterating(fake: FakeDaemon) -> None:
    serve_script(fake, lambda eid: script(eid, [b"a", b"b"], exit_code=3, stderr=b"boom"))
    async with client_for(fake) as client:
        handle = await client.execute("x")
        async with asyncio.timeout(WAIT_S):
            stdout, stderr = await handle.output()
            completed = await handle.wait()  # idempotent once finished
    assert (stdout, stderr) == (b"ab", b"boom")
    assert completed.status == "failed"
    assert completed.exit_code == 3


async def test_responses_are_correlated_by_id_out_of_order(fake: FakeDaemon) -> None:
    gate = asyncio.Event()

    @fake.on("status")
    async def status(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        if params["execution_id"] == "slow":
            await gate.wait()
        else:
            gate.set()
        return {"execution_id": params["execution_id"], "state": "running"}

    async with client_for(fake) as client, asyncio.timeout(WAIT_S):
        slow, fast = await asyncio.gather(client.status("slow"), client.status("fast"))
    assert slow["execution_id"] == "slow"
    assert fast["execution_id"] == "fast"


async def test_notifications_are_routed_by_execution_id(fake: FakeDaemon) -> None:
    serve_script(fake, lambda eid: script(eid, [eid.encode()]))
    async with client_for(fake) as client:
        first = await client.execute("a", execution_id="first")
        second = await client.execute("b", execution_id="second")
        async with asyncio.timeout(WAIT_S):
            outputs = await asyncio.gather(first.output(), second.output())
    assert list(outputs) == [(b"first", b""), (b"second", b"")]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ExecutionNotFound("no execution nope", execution_id="nope"), ExecutionNotFound),
        (LimitReached("too many", limit=1), LimitReached),
    ],
)
async def test_json_rpc_errors_raise_their_class(
    fake: FakeDaemon, error: CCExecutorError, expected: type[CCExecutorError]
) -> None:
    @fake.on("status")
    async def status(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        raise error

    async with client_for(fake) as client:
        with pytest.raises(expected) as caught:
            await client.status("nope")
        assert caught.value.data == error.data
        assert caught.value.message == error.message
        # A bad request never breaks the connection.
        with pytest.raises(expected):
            await client.status("again")


async def test_control_error_on_handle(fake: FakeDaemon) -> None:
    serve_script(fake, lambda eid: script(eid, [b"x"]))

    @fake.on("control")
    async def control(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        if params["type"] == "RESUME":
            raise InvalidTransition("cannot RESUME a running execution", state="running")
        return {"execution_id": params["execution_id"], "status": "paused"}

    async with client_for(fake) as client:
        handle = await client.execute("x")
        assert await handle.pause() == "paused"
        with pytest.raises(InvalidTransition) as caught:
            await handle.resume()
        assert caught.value.data["state"] == "running"
        _, params = await fake.next_request("control")
        assert params == {"type": "PAUSE", "execution_id": handle.execution_id}


async def test_execute_error_releases_the_handle(fake: FakeDaemon) -> None:
    @fake.on("execute")
    async def execute(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        raise LimitReached("too many running executions", limit=0)

    async with client_for(fake) as client:
        with pytest.raises(LimitReached):
            await client.execute("x", execution_id="e1")
        assert "e1" not in client._handles


async def test_wrong_token_is_refused_clearly_without_leaking_it(fake: FakeDaemon) -> None:
    client = client_for(fake, token="wrong-secret-value")
    with pytest.raises(HandshakeRefused) as caught:
        await client.connect()
    message = str(caught.value)
    assert "401" in message
    assert "token" in message
    assert "wrong-secret-value" not in message
    assert not client.connected


async def test_token_is_read_from_the_token_file(fake: FakeDaemon, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    async with WebSocketClient(url=fake.url, token_file=token_file) as client:
        assert client.server_info["session_id"] == "s"


async def test_token_defaults_to_settings_state_dir(
    fake: FakeDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text(TOKEN)
    monkeypatch.setenv("CC_EXECUTOR_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CC_EXECUTOR_TOKEN", raising=False)
    async with WebSocketClient(url=fake.url) as client:
        assert client.connected


async def test_unreachable_daemon_says_how_to_start_it(unused_tcp_port: int) -> None:
    client = WebSocketClient(port=unused_tcp_port, token="t")
    with pytest.raises(DaemonUnreachable, match="cc-executor server start"):
        await client.connect()


async def test_json_ping_is_answered_with_pong(fake: FakeDaemon) -> None:
    async with client_for(fake):
        conn = await fake.next_connection()
        await conn.notify("ping", {})
        method, _ = await fake.next_request("pong")
    assert method == "pong"


async def test_reconnect_reattaches_from_last_seq_without_gap_or_duplicate(
    fake: FakeDaemon,
) -> None:
    eid = "long-run"
    events = script(eid, [f"line {i}\n".encode() for i in range(8)])
    attaches: list[int] = []

    @fake.on("execute")
    async def execute(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        for method, p in events[:4]:  # started + 3 lines, then the connection dies
            conn.notify_after_response(method, p)
        return {"execution_id": eid, "status": "started", "pid": 100, "pgid": 100}

    @fake.on("attach")
    async def attach(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        after = params["after_seq"]
        attaches.append(after)
        # Replay one event too many (seq == after_seq): the client must drop the duplicate.
        for method, p in events[after - 1 :]:
            conn.notify_after_response(method, p)
        return {"execution_id": eid, "replayed": len(events) - after}

    async with client_for(fake) as client:
        first = await fake.next_connection()
        handle = await client.execute("long", execution_id=eid)
        seen: list[Event] = []
        async with asyncio.timeout(WAIT_S):
            async for event in handle:
                seen.append(event)
                if event.seq == 4:
                    first.drop()
        second = await fake.next_connection()
    assert second is not first
    assert attaches == [4]
    assert [e.seq for e in seen] == list(range(1, len(events) + 1))
    assert handle.stdout == b"".join(f"line {i}\n".encode() for i in range(8))


async def test_reconnect_gives_up_after_bounded_attempts() -> None:
    fake = FakeDaemon()
    async with fake.running():
        serve_script(fake, lambda eid: script(eid, [b"x"])[:1])  # never completes
        client = client_for(fake, reconnect_attempts=2)
        await client.connect()
        handle = await client.execute("x")
        first = await handle.__anext__()
        assert isinstance(first, Started)
    # The fake is gone: every reconnect attempt fails; the stream reports it, bounded.
    try:
        with pytest.raises(ConnectionLost, match="2 attempts"):
            async with asyncio.timeout(WAIT_S):
                await handle.wait()
    finally:
        await client.close()


async def test_bounded_buffer_detaches_then_reattaches_with_nothing_lost(
    fake: FakeDaemon,
) -> None:
    eid = "chatty"
    events = script(eid, [f"{i}\n".encode() for i in range(30)])
    serve_script(fake, lambda _: events)
    async with client_for(fake, max_buffered_events=4) as client:
        handle = await client.execute("chatty", execution_id=eid)
        # Nobody iterates: after 4 buffered events the client detaches instead of growing.
        _, params = await fake.next_request("detach")
        assert params == {"execution_id": eid}
        assert len(handle._buffer) <= 4
        seen = await collect(handle)
        attach_after = []
        while not fake.requests.empty():
            method, p = fake.requests.get_nowait()
            if method == "attach":
                attach_after.append(p["after_seq"])
    assert [e.seq for e in seen] == list(range(1, len(events) + 1))
    assert attach_after
    assert attach_after == sorted(attach_after)
    assert handle.stdout == b"".join(f"{i}\n".encode() for i in range(30))


async def test_gap_is_delivered_and_skipped(fake: FakeDaemon) -> None:
    eid = "gappy"

    @fake.on("attach")
    async def attach(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        conn.notify_after_response("stream.gap", {"execution_id": eid, "from_seq": 1, "to_seq": 5})
        conn.notify_after_response("process.output", output_params(eid, 6, "stdout", b"tail"))
        conn.notify_after_response(
            "process.completed",
            {"execution_id": eid, "seq": 7, "status": "completed", "exit_code": 0},
        )
        return {"execution_id": eid, "replayed": 2}

    async with client_for(fake) as client:
        handle = await client.attach(eid)
        events = await collect(handle)
    assert isinstance(events[0], Gap)
    assert (events[0].from_seq, events[0].to_seq) == (1, 5)
    assert [e.seq for e in events[1:]] == [6, 7]
    assert handle.stdout == b"tail"


async def test_close_fails_waiting_streams_with_client_closed(fake: FakeDaemon) -> None:
    serve_script(fake, lambda eid: script(eid, [b"x"])[:1])
    client = client_for(fake)
    await client.connect()
    handle = await client.execute("x")
    await client.close()
    with pytest.raises(ClientClosed):
        async with asyncio.timeout(WAIT_S):
            await handle.wait()
    assert not client.connected


async def test_execute_command_keeps_the_earlier_shape(fake: FakeDaemon) -> None:
    serve_script(fake, lambda eid: script(eid, [b"Hello, World!\n"]))
    client = WebSocketClient(url=fake.url, token=TOKEN)  # not connected: connects for the call
    result = await client.execute_command("echo Hello, World!", timeout=30)
    assert not client.connected
    assert result["success"] is True
    assert result["output_data"] == "Hello, World!\n"
    assert result["error"] is None
    assert result["exit_code"] == 0
    assert result["status"] == "completed"
    assert isinstance(result["execution_id"], str)
    _, params = await fake.next_request("execute")
    assert params["timeout"] == 30


async def test_execute_command_failure_shapes(fake: FakeDaemon) -> None:
    serve_script(fake, lambda eid: script(eid, [], exit_code=3))
    async with client_for(fake) as client:
        failed = await client.execute_command("exit 3")
    assert failed["success"] is False
    assert failed["exit_code"] == 3
    assert failed["error"] == "failed (exit code 3)"

    @fake.on("execute")
    async def refuse(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        raise LimitReached("too many running executions", limit=0)

    async with client_for(fake) as client:
        refused = await client.execute_command("x")
    assert refused["success"] is False
    assert refused["exit_code"] is None
    assert refused["error"] == "too many running executions"


async def test_list_detach_hook_status_and_input(fake: FakeDaemon) -> None:
    @fake.on("list")
    async def list_(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        return {"executions": [{"execution_id": "a", "state": params.get("state")}]}

    @fake.on("hook_status")
    async def hooks(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        return {"configured": False}

    @fake.on("input")
    async def input_(conn: FakeConn, params: dict[str, Any]) -> dict[str, Any]:
        return {"execution_id": params["execution_id"], "bytes_written": 3}

    serve_script(fake, lambda eid: script(eid, [b"x"])[:1])
    async with client_for(fake) as client:
        assert await client.list_executions(state="running", limit=5) == [
            {"execution_id": "a", "state": "running"}
        ]
        _, params = await fake.next_request("list")
        assert params == {"state": "running", "limit": 5}
        assert await client.hook_status() == {"configured": False}
        handle = await client.execute("cat", stdin=True)
        assert (await fake.next_request("execute"))[1]["stdin"] is True
        assert await handle.send_input(b"\xff\x00\x01", eof=True) == 3
        _, params = await fake.next_request("input")
        assert params["encoding"] == "base64"
        assert params["eof"] is True
        await client.detach(handle.execution_id)
        assert (await fake.next_request("detach"))[1] == {"execution_id": handle.execution_id}
        async with asyncio.timeout(WAIT_S):
            assert [e.seq async for e in handle] == [1]  # ends after detach, nothing more
