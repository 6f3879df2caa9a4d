"""The REST door through a real daemon on a loopback port: every route, paging, control, errors.

Requests go over real sockets (a sync ``httpx.Client``; the daemon runs in its own thread), the
executions are real process groups, and waits are bounded polls of ``/status`` (REST has no push).
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from tests.polling import poll_until
from tests.processes import alive
from tests.server.conftest import Daemon, run_daemon

from cc_executor.server.rest import claude_auth_sources, probe_claude_version

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
PY = sys.executable
FINISH_TIMEOUT_S = 30.0  # a test program's whole life, with room for a loaded CI machine
HOSTILE = [
    "$(rm -rf /)",
    "`touch /tmp/cc-executor-pwned`",
    'it\'s "quoted" \\ back\\slash',
    "; ls -la && echo no",
    "ünïcødé ✓ 日本語 🚀",
    "--flag=value",
    "",
    "line1\nline2",
]


@pytest.fixture
def fake_claude(tmp_path: Path) -> Path:
    """An executable named ``claude`` running tests/programs/fake_claude.py."""
    source = PROGRAMS / "fake_claude.py"
    source.chmod(0o755)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    link = bindir / "claude"
    link.symlink_to(source)
    return link


@pytest.fixture
def rest(tmp_path: Path, fake_claude: Path) -> Iterator[tuple[Daemon, httpx.Client]]:
    with (
        run_daemon(tmp_path, claude_path=str(fake_claude)) as daemon,
        httpx.Client(
            base_url=daemon.http,
            headers={"Authorization": f"Bearer {daemon.token}"},
            timeout=FINISH_TIMEOUT_S,
        ) as client,
    ):
        yield daemon, client


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


def _error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


def _start(client: httpx.Client, body: dict[str, Any]) -> str:
    started = _ok(client.post("/execute", json=body), 202)
    assert started["status"] == "started"
    assert started["pid"] > 0
    assert started["pgid"] == started["pid"]
    eid: str = started["execution_id"]
    return eid


def _state(client: httpx.Client, eid: str) -> str:
    state: str = _ok(client.get(f"/executions/{eid}/status"))["state"]
    return state


def _until(predicate: Callable[[], bool], what: str) -> None:
    """Bounded poll (the tests are sync: the daemon has its own loop in another thread)."""
    asyncio.run(poll_until(predicate, timeout=FINISH_TIMEOUT_S, what=what))


def _wait_ended(client: httpx.Client, eid: str) -> dict[str, Any]:
    """The final status, once the execution's process.completed is out (ended_at is set)."""
    _until(
        lambda: _ok(client.get(f"/executions/{eid}/status"))["ended_at"] is not None,
        f"execution {eid} to end",
    )
    status: dict[str, Any] = _ok(client.get(f"/executions/{eid}/status"))
    return status


def _all_results(client: httpx.Client, eid: str, limit: int) -> list[dict[str, Any]]:
    """Every page from after_seq=0, following next_after_seq; checks the paging fields."""
    pages = []
    after = 0
    while True:
        page = _ok(
            client.get(f"/executions/{eid}/results", params={"after_seq": after, "limit": limit})
        )
        assert len(page["events"]) <= limit
        assert all(e["seq"] > after for e in page["events"])
        pages.append(page)
        if not page["has_more"]:
            return pages
        assert page["next_after_seq"] > after, page
        after = page["next_after_seq"]


# --- executions ------------------------------------------------------------------------------


def test_argv_with_hostile_strings_reaches_the_program_verbatim(rest: Any) -> None:
    _, client = rest
    marker = Path("/tmp/cc-executor-pwned")
    marker.unlink(missing_ok=True)
    script = "import json, sys; print(json.dumps(sys.argv[1:]))"
    eid = _start(client, {"argv": [PY, "-c", script, *HOSTILE]})
    status = _wait_ended(client, eid)
    assert status["state"] == "completed"
    assert status["exit_code"] == 0
    page = _ok(client.get(f"/executions/{eid}/results"))
    assert page["finished"] is True
    assert page["has_more"] is False
    assert json.loads(page["output"]["stdout"]["data"]) == HOSTILE
    assert not marker.exists()


def test_shell_command_runs_in_the_shell_and_results_are_events_in_seq_order(
    rest: Any,
) -> None:
    _, client = rest
    eid = _start(client, {"command": "echo $((20 + 22)); echo oops >&2; exit 3"})
    status = _wait_ended(client, eid)
    assert status["state"] == "failed"
    assert status["exit_code"] == 3
    page = _ok(client.get(f"/executions/{eid}/results"))
    methods = [e["method"] for e in page["events"]]
    assert methods[0] == "process.started"
    assert methods[-1] == "process.completed"
    seqs = [e["seq"] for e in page["events"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert page["last_seq"] == seqs[-1]
    assert page["output"]["stdout"] == {"data": "42\n", "encoding": "utf-8", "bytes": 3}
    assert page["output"]["stderr"]["data"] == "oops\n"
    assert page["events"][-1]["params"]["status"] == "failed"


def test_results_page_by_after_seq_and_join_to_the_whole_output(rest: Any) -> None:
    _, client = rest
    eid = _start(client, {"argv": [PY, str(PROGRAMS / "ticker.py"), "0.01", "6"]})
    assert _wait_ended(client, eid)["state"] == "completed"
    whole = _ok(client.get(f"/executions/{eid}/results", params={"limit": 1000}))
    pages = _all_results(client, eid, limit=2)
    events = [e for page in pages for e in page["events"]]
    assert events == whole["events"]
    assert [e["seq"] for e in events] == list(range(1, whole["last_seq"] + 1))
    assert len(pages) == -(-len(events) // 2)
    joined = "".join(page["output"]["stdout"]["data"] for page in pages)
    assert joined == "".join(f"tick {n}\n" for n in range(6)) == whole["output"]["stdout"]["data"]
    past_the_end = _ok(client.get(f"/executions/{eid}/results", params={"after_seq": 10_000}))
    assert past_the_end["events"] == []
    assert past_the_end["next_after_seq"] == 10_000


def test_results_keep_output_that_is_not_utf8_as_base64(rest: Any) -> None:
    _, client = rest
    raw = bytes.fromhex("ff00fe41c3")  # invalid UTF-8, a NUL, and a truncated sequence
    eid = _start(client, {"argv": [PY, str(PROGRAMS / "write_bytes.py"), f"hex:{raw.hex()}"]})
    assert _wait_ended(client, eid)["state"] == "completed"
    stdout = _ok(client.get(f"/executions/{eid}/results"))["output"]["stdout"]
    assert stdout["encoding"] == "base64"
    assert stdout["bytes"] == len(raw)
    assert base64.b64decode(stdout["data"]) == raw


def test_delete_cancels_the_whole_process_tree(rest: Any) -> None:
    _, client = rest
    eid = _start(client, {"argv": [PY, str(PROGRAMS / "tree.py"), "group"]})

    def tree_ready() -> bool:
        page = _ok(client.get(f"/executions/{eid}/results"))
        return "ready" in page["output"]["stdout"]["data"]

    _until(tree_ready, "the tree to report ready")
    stdout = _ok(client.get(f"/executions/{eid}/results"))["output"]["stdout"]["data"]
    pids = [int(line.split()[1]) for line in stdout.splitlines() if line != "ready"]
    procs = [psutil.Process(pid) for pid in pids]
    assert len(alive(procs)) == len(pids) >= 3
    canceled = _ok(client.delete(f"/executions/{eid}"))
    assert canceled["execution_id"] == eid
    assert _wait_ended(client, eid)["state"] == "canceled"
    _until(lambda: not alive(procs), "the tree to die")
    again = _error(client.delete(f"/executions/{eid}"), 409, -32004)
    assert again["data"]["state"] == "canceled"


def test_pause_and_resume_stop_and_continue_the_group(rest: Any) -> None:
    _, client = rest
    eid = _start(client, {"argv": [PY, str(PROGRAMS / "tree.py"), "group", "--tick"]})
    leader = psutil.Process(_ok(client.get(f"/executions/{eid}/status"))["pid"])
    assert _ok(client.post(f"/executions/{eid}/pause"))["state"] == "paused"
    _until(lambda: leader.status() == psutil.STATUS_STOPPED, "SIGSTOP")
    _error(client.post(f"/executions/{eid}/pause"), 409, -32004)
    assert _ok(client.post(f"/executions/{eid}/resume"))["state"] == "running"
    _until(lambda: leader.status() != psutil.STATUS_STOPPED, "SIGCONT")
    _error(client.post(f"/executions/{eid}/resume"), 409, -32004)
    listed = _ok(client.get("/executions", params={"state": "running"}))["executions"]
    assert [e["execution_id"] for e in listed] == [eid]
    _ok(client.delete(f"/executions/{eid}"))
    assert _wait_ended(client, eid)["state"] == "canceled"
    page = _ok(client.get(f"/executions/{eid}/results", params={"limit": 1000}))
    methods = {e["method"] for e in page["events"]}
    assert {"process.paused", "process.resumed", "process.completed"} <= methods


def test_list_filters_by_state_and_limit(rest: Any) -> None:
    _, client = rest
    done = [_start(client, {"argv": ["true"]}) for _ in range(3)]
    for eid in done:
        assert _wait_ended(client, eid)["state"] == "completed"
    rows = _ok(client.get("/executions", params={"state": "completed,failed"}))["executions"]
    assert {r["execution_id"] for r in rows} == set(done)
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    assert len(_ok(client.get("/executions", params={"limit": 2}))["executions"]) == 2
    both = client.get("/executions", params=[("state", "running"), ("state", "completed")])
    assert len(_ok(both)["executions"]) == 3
    assert _ok(client.get("/executions", params={"state": "paused"}))["executions"] == []
    error = _error(client.get("/executions", params={"state": "sleeping"}), 400, -32602)
    assert "sleeping" in error["message"]
    assert client.get("/executions", params={"limit": 0}).status_code == 422


def test_agent_prompt_is_one_argument_never_a_shell_string(rest: Any, tmp_path: Path) -> None:
    _, client = rest
    state = tmp_path / "claude-argv.jsonl"
    prompt = " ".join(HOSTILE)
    eid = _start(
        client, {"agent": "claude", "prompt": prompt, "env": {"FAKE_CLAUDE_STATE": str(state)}}
    )
    status = _wait_ended(client, eid)
    assert status["state"] == "completed", status
    assert status["agent"] == "claude"
    argv = json.loads(state.read_text(encoding="utf-8").splitlines()[0])
    assert argv[-1] == prompt


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"command": "true", "argv": ["true"]},
        {"command": ""},
        {"argv": []},
        {"agent": "claude"},
        {"prompt": "hi"},
        {"command": "true", "unknown": 1},
        {"command": "true", "timeout": -1},
        {"command": "true", "timeout": "soon"},
        {"command": "a\x00b"},
        {"command": "true", "execution_id": "has space"},
        {"tasks": []},
        {"tasks": [{"command": "true", "depends_on": [0]}]},
        {"tasks": [{"command": "true"}], "timeout_per_task": 0},
        [],
        "command",
    ],
)
def test_malformed_execute_bodies_are_422(rest: Any, body: Any) -> None:
    _, client = rest
    response = client.post("/execute", json=body)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)


def test_a_body_that_is_not_json_is_422(rest: Any) -> None:
    _, client = rest
    response = client.post(
        "/execute", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422


def test_spawn_failures_and_unknown_agents_are_errors_not_500(rest: Any) -> None:
    _, client = rest
    missing = client.post("/execute", json={"argv": ["/nonexistent/program"]})
    assert missing.status_code in (400, 503), missing.text
    assert missing.json()["error"]["message"]
    agent = _error(client.post("/execute", json={"agent": "nope", "prompt": "x"}), 400, -32602)
    assert "nope" in agent["message"]
    cwd = client.post("/execute", json={"argv": ["true"], "cwd": "/nonexistent/dir"})
    assert cwd.status_code in (400, 503), cwd.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/executions/{id}/status"),
        ("GET", "/executions/{id}/results"),
        ("DELETE", "/executions/{id}"),
        ("POST", "/executions/{id}/pause"),
        ("POST", "/executions/{id}/resume"),
        ("GET", "/task-lists/{id}"),
        ("POST", "/task-lists/{id}/pause"),
        ("POST", "/task-lists/{id}/resume"),
        ("DELETE", "/task-lists/{id}"),
    ],
)
def test_unknown_ids_are_404_and_malformed_ids_422(rest: Any, method: str, path: str) -> None:
    _, client = rest
    unknown = client.request(method, path.format(id="no-such-id"))
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"]["code"] == -32003
    malformed = client.request(method, path.format(id="bad%20id%21"))
    assert malformed.status_code == 422, malformed.text


def test_results_query_bounds_are_422(rest: Any) -> None:
    _, client = rest
    for params in ({"after_seq": -1}, {"limit": 0}, {"limit": 10**6}, {"after_seq": "x"}):
        assert client.get("/executions/x/results", params=params).status_code == 422


# --- auth ------------------------------------------------------------------------------------


def test_every_route_but_health_needs_the_token(rest: Any) -> None:
    daemon, _ = rest
    with httpx.Client(base_url=daemon.http) as anonymous:
        assert anonymous.get("/health").json()["status"] == "ok"
        routes = [
            ("POST", "/execute"),
            ("GET", "/executions"),
            ("GET", "/executions/x/status"),
            ("GET", "/executions/x/results"),
            ("DELETE", "/executions/x"),
            ("POST", "/executions/x/pause"),
            ("POST", "/executions/x/resume"),
            ("GET", "/task-lists"),
            ("GET", "/task-lists/x"),
            ("POST", "/task-lists/x/pause"),
            ("POST", "/task-lists/x/resume"),
            ("DELETE", "/task-lists/x"),
            ("GET", "/auth/status"),
        ]
        for method, path in routes:
            missing = anonymous.request(method, path, json={"command": "touch /tmp/x"})
            assert missing.status_code == 401, (method, path, missing.text)
            assert missing.headers["www-authenticate"] == "Bearer"
            wrong = anonymous.request(method, path, headers={"Authorization": "Bearer wrong"})
            assert wrong.status_code == 403, (method, path)
            assert daemon.token not in wrong.text
        basic = anonymous.get("/executions", headers={"Authorization": f"Basic {daemon.token}"})
        assert basic.status_code == 401
    assert _ok(rest[1].get("/executions"))["executions"] == []  # nothing ran


def test_a_foreign_origin_is_refused_even_with_the_token(rest: Any) -> None:
    daemon, client = rest
    foreign = client.get("/executions", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    own = client.get("/executions", headers={"Origin": daemon.http})
    assert own.status_code == 200


def test_a_foreign_host_header_is_refused(rest: Any) -> None:
    _, client = rest
    assert client.get("/executions", headers={"Host": "evil.example"}).status_code == 403


def test_openapi_schema_documents_routes_bodies_and_the_token(rest: Any) -> None:
    daemon, _ = rest
    with httpx.Client(base_url=daemon.http) as anonymous:
        schema = _ok(anonymous.get("/openapi.json"))
        assert anonymous.get("/docs").status_code == 200
    assert schema["components"]["securitySchemes"]["bearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearerToken"]["description"],
    }
    execute = schema["paths"]["/execute"]["post"]
    assert execute["security"] == [{"bearerToken": []}]
    body = execute["requestBody"]["content"]["application/json"]["schema"]
    refs = {option["$ref"].rsplit("/", 1)[1] for option in body["oneOf"]}
    assert refs == {"ExecuteParams", "TaskListCreateParams"}
    assert {"202", "400", "401", "403", "422", "429", "503"} <= set(execute["responses"])
    assert "security" not in schema["paths"]["/health"]["get"]
    for path in (
        "/executions",
        "/executions/{execution_id}/status",
        "/executions/{execution_id}/results",
        "/executions/{execution_id}",
        "/executions/{execution_id}/pause",
        "/executions/{execution_id}/resume",
        "/task-lists",
        "/task-lists/{list_id}",
        "/task-lists/{list_id}/pause",
        "/task-lists/{list_id}/resume",
        "/auth/status",
    ):
        assert path in schema["paths"], path


# --- task lists ------------------------------------------------------------------------------


def _list_state(client: httpx.Client, list_id: str) -> dict[str, Any]:
    view: dict[str, Any] = _ok(client.get(f"/task-lists/{list_id}"))
    return view


def test_task_list_runs_its_tasks_in_order(rest: Any) -> None:
    _, client = rest
    created = _ok(
        client.post(
            "/execute",
            json={
                "name": "two steps",
                "tasks": [
                    {"argv": [PY, "-c", "print('first')"]},
                    {"command": 'echo second "$(echo nested)"'},
                ],
                "timeout_per_task": 60,
            },
        ),
        202,
    )
    list_id = created["list_id"]
    assert created["total_tasks"] == 2
    assert created["name"] == "two steps"
    _until(lambda: _list_state(client, list_id)["state"] == "completed", "the list to complete")
    view = _list_state(client, list_id)
    assert [t["state"] for t in view["tasks"]] == ["completed", "completed"]
    outputs = [
        _ok(client.get(f"/executions/{t['execution_id']}/results"))["output"]["stdout"]["data"]
        for t in view["tasks"]
    ]
    assert outputs == ["first\n", "second nested\n"]
    listed = _ok(client.get("/task-lists"))["task_lists"]
    assert [row["list_id"] for row in listed] == [list_id]
    assert _ok(client.get("/task-lists", params={"state": "running"}))["task_lists"] == []
    _error(client.delete(f"/task-lists/{list_id}"), 409, -32004)


def test_task_list_pause_resume_and_cancel(rest: Any) -> None:
    _, client = rest
    created = _ok(
        client.post(
            "/execute",
            json={
                "tasks": [
                    {"argv": [PY, str(PROGRAMS / "tree.py"), "group", "--tick"]},
                    {"argv": ["true"]},
                ]
            },
        ),
        202,
    )
    list_id = created["list_id"]

    def first_task_running() -> bool:
        return bool(_list_state(client, list_id)["tasks"][0]["state"] == "running")

    _until(first_task_running, "the first task to run")
    paused = _ok(client.post(f"/task-lists/{list_id}/pause"))
    assert paused["queue_paused"] is True
    resumed = _ok(client.post(f"/task-lists/{list_id}/resume"))
    assert resumed["queue_paused"] is False
    held = _ok(client.post(f"/task-lists/{list_id}/pause", params={"pause_running": True}))
    eid = held["tasks"][0]["execution_id"]
    assert _state(client, eid) == "paused"
    canceled = _ok(client.delete(f"/task-lists/{list_id}"))
    assert canceled["list_id"] == list_id
    _until(lambda: _list_state(client, list_id)["state"] == "canceled", "the list to be canceled")
    assert _wait_ended(client, eid)["state"] == "canceled"
    assert _list_state(client, list_id)["tasks"][1]["execution_id"] is None


# --- /auth/status ----------------------------------------------------------------------------


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_auth_status_reports_the_cli_and_its_version(tmp_path: Path) -> None:
    cli = _script(tmp_path / "claude", 'echo "2.1.9 (Claude Code)"')
    with (
        run_daemon(tmp_path, claude_path=str(cli)) as daemon,
        httpx.Client(
            base_url=daemon.http, headers={"Authorization": f"Bearer {daemon.token}"}
        ) as client,
    ):
        status = _ok(client.get("/auth/status"))
    assert status["claude"] == {
        "installed": True,
        "path": str(cli),
        "version": "2.1.9 (Claude Code)",
        "version_error": None,
    }
    if not status["authenticated"]:
        assert any("claude setup-token" in line for line in status["instructions"])


def test_auth_status_without_the_cli_says_how_to_install(tmp_path: Path) -> None:
    with (
        run_daemon(tmp_path, claude_path=str(tmp_path / "missing-claude")) as daemon,
        httpx.Client(
            base_url=daemon.http, headers={"Authorization": f"Bearer {daemon.token}"}
        ) as client,
    ):
        status = _ok(client.get("/auth/status"))
    assert status["claude"]["installed"] is False
    assert any("Install Claude Code" in line for line in status["instructions"])


async def test_version_probe_is_bounded_and_reports_failures(tmp_path: Path) -> None:
    hang = _script(tmp_path / "hang", "exec sleep 60")
    version, error = await probe_claude_version(str(hang), {"PATH": "/usr/bin:/bin"}, timeout_s=0.3)
    assert version is None
    assert error is not None
    assert "did not finish" in error
    failing = _script(tmp_path / "fail", "echo broken; exit 2")
    version, error = await probe_claude_version(str(failing), {"PATH": "/usr/bin:/bin"})
    assert version is None
    assert error == "`claude --version` exited with 2: broken"
    version, error = await probe_claude_version(str(tmp_path / "absent"), {})
    assert version is None
    assert error is not None
    assert "could not run" in error


def test_auth_sources_name_credentials_and_never_their_values(tmp_path: Path) -> None:
    secret = "sk-ant-oat01-SECRET-VALUE"
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    assert claude_auth_sources({"HOME": str(home)}) == []
    (home / ".claude" / ".credentials.json").write_text(
        json.dumps({"claudeAiOauth": {"accessToken": secret, "refreshToken": secret}})
    )
    (home / ".claude.json").write_text(json.dumps({"oauthAccount": {"emailAddress": "a@b.c"}}))
    env = {"HOME": str(home), "ANTHROPIC_API_KEY": secret, "CLAUDE_CODE_USE_BEDROCK": "1"}
    sources = claude_auth_sources(env)
    assert [(s.kind, s.detail) for s in sources] == [
        ("api_key", "ANTHROPIC_API_KEY"),
        ("third_party", "CLAUDE_CODE_USE_BEDROCK"),
        ("credentials_file", str(home / ".claude" / ".credentials.json")),
        ("oauth_account", str(home / ".claude.json")),
    ]
    assert secret not in repr(sources)
    assert "a@b.c" not in repr(sources)
    # CLAUDE_CONFIG_DIR moves the credentials; an empty oauth section is no login
    config = tmp_path / "config"
    config.mkdir()
    (config / ".credentials.json").write_text(json.dumps({"claudeAiOauth": {}}))
    moved = claude_auth_sources(
        {"HOME": str(tmp_path / "nohome"), "CLAUDE_CONFIG_DIR": str(config)}
    )
    assert moved == []
    (config / ".credentials.json").write_text("{not json")
    assert claude_auth_sources({"CLAUDE_CONFIG_DIR": str(config)}) == []
