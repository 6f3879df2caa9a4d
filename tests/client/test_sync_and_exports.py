"""The blocking wrapper, the event mapping, and the package's public surface."""

from __future__ import annotations

import base64

from tests.client.fake_daemon import TOKEN, FakeDaemon, fake_in_thread, script, serve_script

import cc_executor.client as client_pkg
from cc_executor.client import (
    AgentEvent,
    Completed,
    Event,
    Output,
    SyncWebSocketClient,
)
from cc_executor.client.events import event_from_notification


def _scripted(fake: FakeDaemon) -> None:
    serve_script(fake, lambda eid: script(eid, [b"Hello, World!\n"], stderr=b"note\n"))


def test_sync_execute_command_and_run() -> None:
    with fake_in_thread(_scripted) as fake:
        client = SyncWebSocketClient(url=fake.url, token=TOKEN)
        result = client.execute_command("echo Hello, World!", timeout=10)
        seen: list[Event] = []
        run = client.run("echo Hello, World!", on_event=seen.append)
    assert result["success"] is True
    assert result["output_data"] == "Hello, World!\n"
    assert result["error"] == "note\n"
    assert run.stdout == b"Hello, World!\n"
    assert run.success
    assert [e.seq for e in seen] == [1, 2, 3, 4]


def test_sync_execute_command_reports_an_unreachable_daemon(unused_tcp_port: int) -> None:
    result = SyncWebSocketClient(port=unused_tcp_port, token="t").execute_command("true")
    assert result["success"] is False
    assert "cc-executor server start" in result["error"]


def test_event_mapping_is_lenient_and_keeps_the_wire() -> None:
    raw = {"execution_id": "e", "seq": 2, "type": "stderr", "encoding": "base64"}
    raw["data"] = base64.b64encode(b"\xff").decode()
    out = event_from_notification("process.output", raw)
    assert isinstance(out, Output)
    assert out.data_bytes == b"\xff"
    assert out.text == "\ufffd"
    assert out.to_wire() == {"method": "process.output", "params": raw}
    done = event_from_notification(
        "process.completed", {"execution_id": "e", "seq": 3, "status": "timeout", "exit_code": "x"}
    )
    assert isinstance(done, Completed)
    assert done.exit_code is None
    assert not done.success
    agent = event_from_notification("agent.event", {"execution_id": "e", "kind": "usage", "n": 1})
    assert isinstance(agent, AgentEvent)
    assert agent.kind == "usage"
    assert agent.params["n"] == 1
    other = event_from_notification("hook.warning", {"execution_id": "e", "seq": 4})
    assert type(other) is Event
    assert other.method == "hook.warning"


def test_exports() -> None:
    assert sorted(client_pkg.__all__) == client_pkg.__all__
    for name in client_pkg.__all__:
        assert hasattr(client_pkg, name), name
    for name in ("WebSocketClient", "SyncWebSocketClient", "ExecutionHandle", "Output", "Gap"):
        assert name in client_pkg.__all__
    # The earlier CC Executor's import path keeps working.
    from cc_executor.client.client import WebSocketClient

    assert WebSocketClient is client_pkg.WebSocketClient
