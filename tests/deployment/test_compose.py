"""deployment/: the compose file, the Dockerfile and the systemd unit, checked without building.

The compose file is checked twice: by ``docker compose config`` when docker with the compose
plugin really works here, and always by a schema check in Python (services, ports, volumes,
health checks, the daemon's settings). The Python check is itself tested on broken files, so it
can fail.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cc_executor.config import Settings
from cc_executor.server.security import allowed_host_names, host_allowed

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = ROOT / "deployment"
COMPOSE = DEPLOYMENT / "docker-compose.yml"
DOCKERFILE = DEPLOYMENT / "Dockerfile"
UNIT = DEPLOYMENT / "cc-executor.service"
INSTALL_CLAUDE = ROOT / "scripts" / "install-claude.sh"

DOCKER_TIMEOUT_S = 30.0
DAEMON = "websocket"
REDIS = "redis"
HOST_PORTS = {8001, 8004}  # the earlier CC Executor's REST and WebSocket ports
REDIS_HOST_PORT = 6380
STATE_DIR_IN_CONTAINER = "/var/lib/cc-executor"
CLAUDE_DIR_IN_CONTAINER = "/home/appuser/.claude"
# Added by the Redis store work; present in the compose file before config.py may have them.
SCALE_OUT_SETTINGS = {"store", "redis_url"}
TOP_LEVEL_KEYS = {"name", "services", "volumes", "networks", "configs", "secrets"}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "start_period", "retries"}


def _port_pair(entry: object) -> tuple[int, int]:
    if isinstance(entry, dict):
        return int(entry["published"]), int(entry["target"])
    match = re.fullmatch(r"(?:[\d.]+:)?(\d+):(\d+)(?:/tcp)?", str(entry))
    if match is None:
        raise ValueError(f"unparsable port mapping {entry!r}")
    return int(match.group(1)), int(match.group(2))


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _check_healthcheck(name: str, service: dict[str, Any]) -> list[str]:
    check = service.get("healthcheck")
    if not isinstance(check, dict):
        return [f"{name}: no healthcheck"]
    problems = [f"{name}: healthcheck lacks {k}" for k in sorted(HEALTHCHECK_KEYS - set(check))]
    test = check.get("test")
    if not isinstance(test, list) or not test or test[0] not in ("CMD", "CMD-SHELL"):
        problems.append(f"{name}: healthcheck test must be a CMD list, got {test!r}")
    return problems


def _check_volumes(name: str, service: dict[str, Any], declared: set[str]) -> dict[str, str]:
    """Mount target -> named volume; raises for a named volume not declared at the top level."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        if not source.startswith((".", "/", "$", "~")) and source not in declared:
            raise ValueError(f"{name}: volume {source} is not declared under volumes:")
        mounts[target] = source
    return mounts


def _check_daemon(compose: dict[str, Any]) -> list[str]:
    problems = []
    daemon = compose["services"][DAEMON]
    env = _environment(daemon)
    build = daemon.get("build", {})
    dockerfile = (
        COMPOSE.parent / build.get("context", ".") / build.get("dockerfile", "")
    ).resolve()
    if dockerfile != DOCKERFILE.resolve():
        problems.append(f"daemon builds {dockerfile}, not {DOCKERFILE}")
    known = {f"CC_EXECUTOR_{n.upper()}" for n in [*Settings.model_fields, *SCALE_OUT_SETTINGS]}
    problems += [f"unknown setting {k}" for k in env if k.startswith("CC_") and k not in known]
    port = int(env.get("CC_EXECUTOR_PORT", "0"))
    pairs = {_port_pair(p) for p in daemon.get("ports", [])}
    if {published for published, _ in pairs} != HOST_PORTS:
        problems.append(f"daemon publishes {sorted(pairs)}, wanted host ports {HOST_PORTS}")
    if any(target != port for _, target in pairs):
        problems.append(f"daemon ports {sorted(pairs)} must all map to CC_EXECUTOR_PORT={port}")
    expected = {
        "CC_EXECUTOR_HOST": "0.0.0.0",
        "CC_EXECUTOR_AUTH_REQUIRED": "true",
        "CC_EXECUTOR_STORE": "redis",
        "CC_EXECUTOR_REDIS_URL": f"redis://{REDIS}:6379/0",
        "CC_EXECUTOR_STATE_DIR": STATE_DIR_IN_CONTAINER,
    }
    problems += [
        f"daemon {k}={env.get(k)!r}, expected {v!r}" for k, v in expected.items() if env.get(k) != v
    ]
    try:
        hosts = json.loads(env.get("CC_EXECUTOR_ALLOWED_HOSTS", "[]"))
    except ValueError:
        hosts = None
    if not isinstance(hosts, list) or DAEMON not in hosts:
        problems.append(f"CC_EXECUTOR_ALLOWED_HOSTS must be a JSON list naming {DAEMON}")
    else:
        # What the daemon's own guard accepts: every published port, reached as localhost.
        accepted = allowed_host_names(env.get("CC_EXECUTOR_HOST", ""), port, hosts)
        problems += [
            f"Host localhost:{published} would be refused (CC_EXECUTOR_ALLOWED_HOSTS)"
            for published, _ in sorted(pairs)
            if not host_allowed(f"localhost:{published}", accepted)
        ]
    declared = set(compose.get("volumes") or {})
    mounts = _check_volumes(DAEMON, daemon, declared)
    for target in (STATE_DIR_IN_CONTAINER, CLAUDE_DIR_IN_CONTAINER):
        if target not in mounts:
            problems.append(f"daemon has no volume on {target}")
    depends = daemon.get("depends_on", {})
    if not isinstance(depends, dict) or depends.get(REDIS, {}).get("condition") != (
        "service_healthy"
    ):
        problems.append("daemon must wait for a healthy redis")
    health = " ".join(map(str, (daemon.get("healthcheck") or {}).get("test", [])))
    if f":{port}/health" not in health:
        problems.append(f"daemon healthcheck does not ask :{port}/health: {health}")
    return problems + _check_healthcheck(DAEMON, daemon)


def _check_redis(compose: dict[str, Any]) -> list[str]:
    problems = []
    redis = compose["services"][REDIS]
    if not str(redis.get("image", "")).startswith("redis:7"):
        problems.append(f"redis image {redis.get('image')!r} is not Redis 7")
    if {_port_pair(p) for p in redis.get("ports", [])} != {(REDIS_HOST_PORT, 6379)}:
        problems.append(f"redis must publish {REDIS_HOST_PORT}:6379, got {redis.get('ports')}")
    command = redis.get("command", [])
    words = command.split() if isinstance(command, str) else [str(w) for w in command]
    if "--appendonly" not in words or words[words.index("--appendonly") + 1 :][:1] != ["yes"]:
        problems.append(f"redis must run with --appendonly yes, got {command!r}")
    mounts = _check_volumes(REDIS, redis, set(compose.get("volumes") or {}))
    if "/data" not in mounts:
        problems.append("redis has no volume on /data")
    return problems + _check_healthcheck(REDIS, redis)


def compose_problems(compose: Any) -> list[str]:
    """Everything wrong with a parsed compose file; empty when it is right."""
    if not isinstance(compose, dict):
        return ["not a mapping"]
    problems = [f"unknown top-level key {k}" for k in compose if k not in TOP_LEVEL_KEYS]
    services = compose.get("services")
    if not isinstance(services, dict) or {DAEMON, REDIS} - set(services):
        return [*problems, f"services must include {DAEMON} and {REDIS}"]
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            problems.append(f"{name}: neither image nor build")
    try:
        problems += _check_daemon(compose) + _check_redis(compose)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        problems.append(f"malformed: {exc!r}")
    return problems


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_file_passes_the_schema_check(compose: dict[str, Any]) -> None:
    assert compose_problems(compose) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("services", "redis", "command"), ["redis-server"], "appendonly"),
        (("services", "websocket", "ports"), ["8001:8004"], "host ports"),
        (("services", "websocket", "ports"), ["8001:8004", "8004:9999"], "must all map"),
        (("services", "websocket", "environment", "CC_EXECUTOR_HOST"), "127.0.0.1", "HOST"),
        (("services", "websocket", "environment", "CC_EXECUTOR_AUTH_REQUIRED"), "false", "AUTH"),
        (("services", "websocket", "environment", "CC_EXECUTOR_PROT"), "1", "unknown setting"),
        (("services", "websocket", "healthcheck"), None, "no healthcheck"),
        (("services", "websocket", "volumes"), ["undeclared:/var/lib/cc-executor"], "declared"),
        (("services", "redis", "ports"), ["6379:6379"], "6380"),
        (("services", "redis", "image"), "redis:6", "Redis 7"),
        (("volumes",), {}, "declared"),
        (("services", "websocket", "depends_on"), ["redis"], "healthy redis"),
        (
            ("services", "websocket", "environment", "CC_EXECUTOR_ALLOWED_HOSTS"),
            '["websocket"]',
            "localhost:8001 would be refused",
        ),
        (
            ("services", "websocket", "environment", "CC_EXECUTOR_ALLOWED_HOSTS"),
            '["websocket", "localhost:"]',
            "malformed",
        ),
    ],
)
def test_schema_check_catches_a_broken_file(
    compose: dict[str, Any], path: tuple[str, ...], value: Any, expected: str
) -> None:
    broken = copy.deepcopy(compose)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    problems = compose_problems(broken)
    assert any(expected in p for p in problems), problems


def test_schema_check_needs_both_services(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    del broken["services"]["redis"]
    assert compose_problems(broken) == ["services must include websocket and redis"]


def _compose_plugin_works() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        probe = subprocess.run(
            [docker, "compose", "version"],
            capture_output=True,
            timeout=DOCKER_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def test_docker_compose_config_accepts_the_file() -> None:
    if not _compose_plugin_works():
        pytest.skip("docker with the compose plugin does not work here (`docker compose version`)")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=DOCKER_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- Dockerfile and unit ----------------------------------------------------------------------
def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line (continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    steps = _instructions(DOCKERFILE.read_text())
    final = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    assert steps[final] == ("FROM", "python:3.11-slim")
    stage = steps[final:]
    users = [args for word, args in stage if word == "USER"]
    assert users, "no USER in the final stage"
    assert users[-1] not in ("root", "0", "0:0")
    last_user = max(i for i, (word, _) in enumerate(stage) if word == "USER")
    last_run = max(i for i, (word, _) in enumerate(stage) if word == "RUN")
    assert last_user > last_run, "USER must come after the last RUN (nothing runs as root after)"
    health = [args for word, args in stage if word == "HEALTHCHECK"]
    assert len(health) == 1
    assert "/health" in health[0]
    port = re.search(r"CC_EXECUTOR_PORT=(\d+)", DOCKERFILE.read_text())
    assert port is not None
    assert f"'{port.group(1)}'" in health[0]
    env = " ".join(args for word, args in stage if word == "ENV")
    assert "CC_EXECUTOR_HOST=0.0.0.0" in env
    assert "CC_EXECUTOR_AUTH_REQUIRED=true" in env
    assert "CC_EXECUTOR_ALLOWED_HOSTS=" in env


def test_dockerfile_installs_claude_with_the_pinned_script() -> None:
    text = DOCKERFILE.read_text()
    pin = re.search(r"CLAUDE_CODE_VERSION:-([\d.]+)", INSTALL_CLAUDE.read_text())
    assert pin is not None
    # The script holds the one pin; the Dockerfile must use it rather than a second version.
    assert "install-claude.sh" in text
    assert "CLAUDE_CODE_VERSION=" not in text or pin.group(1) in text
    ignore = (DEPLOYMENT / "Dockerfile.dockerignore").read_text()
    for needed in ("!pyproject.toml", "!README.md", "!src/", "!scripts/install-claude.sh"):
        assert needed in ignore


def test_systemd_unit_runs_the_daemon_in_the_foreground() -> None:
    text = UNIT.read_text()
    assert re.search(r"^ExecStart=\S*cc-executor server start --foreground$", text, re.M)
    assert "KillSignal=SIGTERM" in text
    assert "KillMode=mixed" in text
