"""Token, Origin and Host: the decisions, then the handshake matrix on a real socket."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from typing import Any

import httpx
import pytest

from cc_executor.server.security import (
    allowed_host_names,
    allowed_origins,
    authorize_websocket,
    bearer_token_from_headers,
    host_allowed,
    host_entry_values,
    origin_allowed,
)
from cc_executor.tokens import load_or_create_token, read_token

HOSTS = allowed_host_names("127.0.0.1", 8003)
ORIGINS = allowed_origins("127.0.0.1", 8003, ["https://app.example"])


def decide(headers: dict[str, str], token: str | None = "secret") -> Any:
    return authorize_websocket(headers, token=token, hosts=HOSTS, origins=ORIGINS)


def test_host_names_include_loopback_with_and_without_port() -> None:
    for host in ("127.0.0.1:8003", "localhost:8003", "[::1]:8003", "localhost", "LOCALHOST:8003"):
        assert decide({"host": host, "authorization": "Bearer secret"}).allowed, host
    for host in ("evil.example:8003", "127.0.0.1.evil.example", "", "127.0.0.1:9999"):
        decision = decide({"host": host, "authorization": "Bearer secret"})
        assert (decision.allowed, decision.status) == (False, 403), host


def test_allowed_host_entries_with_a_port_match_literally() -> None:
    # A container listening on 8004, published on host ports 8001 and 8004.
    hosts = allowed_host_names(
        "0.0.0.0", 8004, ["websocket", "localhost:8001", "[::1]:8001", "127.0.0.1:8001"]
    )
    for host in (
        "localhost:8001",
        "LOCALHOST:8001",
        "[::1]:8001",
        "127.0.0.1:8001",
        "localhost:8004",
        "[::1]:8004",
        "websocket",
        "websocket:8004",
    ):
        assert host_allowed(host, hosts), host
    for host in (
        "localhost:8002",  # only the listed extra port, not any port
        "websocket:8001",  # a bare name gets the daemon's port only
        "evil.example:8001",
        "[localhost:8001]",
        "localhost:8001:8004",
        "::1:8001",  # IPv6 with a port must be bracketed
        "[::1]:80011",
        "0.0.0.0:8004",  # the wildcard bind address is never a name
    ):
        assert not host_allowed(host, hosts), host


def test_bare_entries_get_the_daemon_port_and_ipv6_brackets() -> None:
    assert host_entry_values("WebSocket", 8004) == {"websocket", "websocket:8004"}
    assert host_entry_values("::1", 8004) == {"[::1]", "[::1]:8004"}
    assert host_entry_values("[::1]", 8004) == {"[::1]", "[::1]:8004"}
    assert host_entry_values(" [::1]:8001 ", 8004) == {"[::1]:8001"}
    assert host_entry_values("app.example:443", 8004) == {"app.example:443"}


@pytest.mark.parametrize(
    "entry",
    ["", "host:", "host:http", ":8001", "host:0", "host:65536", "[::1]x", "[zz]:1", "a:b:c"],
)
def test_malformed_allowed_host_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="allowed host"):
        allowed_host_names("127.0.0.1", 8003, [entry])


def test_origin_rules() -> None:
    assert origin_allowed(None, ORIGINS)  # non-browser clients send none
    assert not origin_allowed("null", ORIGINS)
    assert origin_allowed("http://localhost:8003", ORIGINS)
    assert origin_allowed("https://app.example/", ORIGINS)
    assert not origin_allowed("http://localhost:8004", ORIGINS)
    assert not origin_allowed("https://evil.example", ORIGINS)


def test_token_sources_and_decisions() -> None:
    assert bearer_token_from_headers({"authorization": "Bearer abc"}) == "abc"
    assert bearer_token_from_headers({"authorization": "Basic abc"}) is None
    proto = {"sec-websocket-protocol": "cc-executor, cc-executor.bearer.abc"}
    assert bearer_token_from_headers(proto) == "abc"
    base = {"host": "127.0.0.1:8003"}
    assert decide(base).status == 401
    assert decide({**base, "authorization": "Bearer wrong"}).status == 403
    ok = decide({**base, "sec-websocket-protocol": "cc-executor, cc-executor.bearer.secret"})
    assert ok.allowed
    assert ok.subprotocol == "cc-executor"
    assert decide(base, token=None).allowed  # auth explicitly off


def test_token_file_is_created_once_with_mode_0600(tmp_path: Any) -> None:
    path = tmp_path / "state" / "token"
    token = load_or_create_token(path)
    assert len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(path) == token
    path.chmod(0o644)
    assert load_or_create_token(path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_token(tmp_path / "missing") is None


async def raw_handshake(port: int, headers: dict[str, str]) -> tuple[int, str]:
    """Send a WebSocket upgrade by hand; return the HTTP status and the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /ws/mcp HTTP/1.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    async with asyncio.timeout(10):
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    writer.close()
    await writer.wait_closed()
    return int(head.split()[1]), head


async def test_handshake_matrix_refuses_before_accept(daemon: Any) -> None:
    port = daemon.settings.port
    host = f"127.0.0.1:{port}"
    good = f"Bearer {daemon.token}"
    cases = [
        ({"Host": host}, 401),
        ({"Host": host, "Authorization": "Bearer wrong-token"}, 403),
        ({"Host": host, "Authorization": good, "Origin": "https://evil.example"}, 403),
        ({"Host": host, "Authorization": good, "Origin": "null"}, 403),
        ({"Host": f"evil.example:{port}", "Authorization": good}, 403),
        ({"Host": host, "Authorization": good}, 101),
        ({"Host": host, "Authorization": good, "Origin": f"http://localhost:{port}"}, 101),
        (
            {
                "Host": host,
                "Sec-WebSocket-Protocol": f"cc-executor, cc-executor.bearer.{daemon.token}",
            },
            101,
        ),
    ]
    for headers, expected in cases:
        status, head = await raw_handshake(port, headers)
        assert status == expected, (headers, head)
        assert daemon.token not in head
        if headers.get("Sec-WebSocket-Protocol"):
            assert "sec-websocket-protocol: cc-executor\r\n" in head.lower()


async def test_http_host_check_and_open_health(daemon: Any) -> None:
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        ok = await http.get("/health")
        assert ok.status_code == 200
        assert ok.json()["status"] == "ok"
        bad = await http.get("/health", headers={"Host": "evil.example"})
        assert bad.status_code == 403


async def test_token_never_reaches_children(
    daemon_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC_EXECUTOR_TOKEN", "tok-from-environment-xyz")
    with daemon_factory() as d:
        assert d.token == "tok-from-environment-xyz"
        async with d.session() as peer:
            run = await peer.run({"command": "env"})
    env = run.output().decode()
    assert "tok-from-environment-xyz" not in env
    assert "CC_EXECUTOR_TOKEN" not in env
    assert f"CC_EXECUTOR_EXECUTION_ID={run.execution_id}" in env


async def test_published_port_entries_pass_every_door(daemon_factory: Any) -> None:
    with daemon_factory(allowed_hosts=["localhost:8001", "[::1]:8001"]) as d:
        port = d.settings.port
        good = f"Bearer {d.token}"
        for host, expected in (
            ("localhost:8001", 101),
            ("[::1]:8001", 101),
            ("localhost:8002", 403),
        ):
            status, head = await raw_handshake(port, {"Host": host, "Authorization": good})
            assert status == expected, (host, head)
        async with httpx.AsyncClient(base_url=d.http) as http:
            for host, expected in (
                ("localhost:8001", 200),
                (f"localhost:{port}", 200),
                ("localhost:8002", 403),
            ):
                health = await http.get("/health", headers={"Host": host})
                assert health.status_code == expected, host
                listed = await http.get(
                    "/executions", headers={"Host": host, "Authorization": good}
                )
                assert listed.status_code == expected, (host, listed.text)
