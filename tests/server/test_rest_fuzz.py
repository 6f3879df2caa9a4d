"""Schemathesis against the REST door's own OpenAPI schema, through a real daemon on loopback.

Every operation gets a bounded number of generated requests (deterministic: derandomized, no
example database) carrying the token; each response must be no 5xx and must match the status
codes, content types and body schemas the OpenAPI document declares.

Why fuzzing a door that spawns processes is safe here: fuzzed bodies can be *valid* executions,
so nothing generated may run anything real or long-lived. The daemon is started with a shell and
a ``claude`` that are both ``true`` (``true -c <anything>`` and ``true <any prompt>`` exit 0 at
once), and before each call the test replaces ``argv[0]`` of every argv it is about to send (top
level and in every task) with the absolute path of ``true``, keeping the fuzzed arguments, env,
cwd and timeouts. So every process the fuzz can start is ``true``: it cannot touch the machine,
cannot outlive its request by more than a moment, and the daemon's shutdown at the end of the
module kills whatever group is left. Agent retries are turned down to one attempt so a failing
fake agent run ends at once instead of backing off.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from tests.server.conftest import Daemon, run_daemon

POSITIVE_EXAMPLES = 20  # per operation; with the negative ones 30 per operation, and the
NEGATIVE_EXAMPLES = 10  # 14 operations stay well under a minute on 2 shared cores
REQUEST_TIMEOUT_S = 10.0  # one request; every route answers without waiting for a process
TRUE = shutil.which("true") or "/bin/true"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _focus(spec: Any) -> None:
    """Keep exactly one target (argv, command or agent + prompt) in each execution spec.

    The JSON schema cannot say "exactly one of", so most generated bodies would stop at
    validation; with this, the positive cases reach the spawn path with their other fields
    (env, cwd, timeouts, metadata, agent_options, task options) still fuzzed. Combinations of
    targets are covered by test_rest.py's 422 cases.
    """
    if not isinstance(spec, dict):
        return
    if isinstance(spec.get("tasks"), list):
        for task in spec["tasks"]:
            _focus(task)
        return
    targets = [key for key in ("argv", "command", "agent") if key in spec]
    keep = targets[0] if targets else "argv"
    for key in targets[1:]:
        del spec[key]
    if keep == "argv" and not (isinstance(spec.get("argv"), list) and spec["argv"]):
        spec["argv"] = [TRUE]
    if keep == "agent":
        spec.setdefault("prompt", "")
    else:
        spec.pop("prompt", None)
        spec.pop("agent_options", None)


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with run_daemon(
        tmp_path_factory.mktemp("fuzz"),
        shell=TRUE,
        claude_path=TRUE,
        retry_attempts=1,
        terminate_grace_s=0.5,
    ) as daemon:
        yield daemon


def _defang(spec: Any) -> None:
    """Make an execution spec harmless in place: whatever argv says, ``true`` runs."""
    if not isinstance(spec, dict):
        return
    argv = spec.get("argv")
    if isinstance(argv, list) and argv:
        argv[0] = TRUE
    tasks = spec.get("tasks")
    if isinstance(tasks, list):
        for task in tasks:
            _defang(task)


def _fuzz(operation: Any, mode: GenerationMode, examples: int, token: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        if mode is GenerationMode.POSITIVE:
            _focus(case.body)
        _defang(case.body)
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"},
            checks=CHECKS,
            timeout=REQUEST_TIMEOUT_S,
        )

    run()


def test_rest_api_conforms_to_its_schema(fuzz_daemon: Daemon) -> None:
    # The schema is the running app's own /openapi.json; operations are fuzzed one after another
    # (schemathesis' lazy pytest fixture loader does not run under this pytest version).
    schema = schemathesis.openapi.from_url(f"{fuzz_daemon.http}/openapi.json")
    operations: list[Any] = [cast(Any, result).ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14  # every REST route plus /health
    failures: dict[str, str] = {}
    for operation in operations:
        for mode, examples in (
            (GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
            (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES),
        ):
            try:
                _fuzz(operation, mode, examples, fuzz_daemon.token)
            except Unsatisfiable:  # nothing to make invalid (GET /health has no inputs)
                assert mode is GenerationMode.NEGATIVE, operation.label
            # one operation's failure must not hide the others' (a FailureGroup is a
            # BaseExceptionGroup, not an Exception)
            except BaseExceptionGroup as exc:
                failures[f"{operation.label} ({mode.value})"] = f"{exc}"
            except Exception as exc:
                failures[f"{operation.label} ({mode.value})"] = f"{exc}"
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())
    # the fuzz reached the spawn path: valid bodies started (harmless) executions
    with httpx.Client(base_url=fuzz_daemon.http, timeout=REQUEST_TIMEOUT_S) as client:
        listed = client.get(
            "/executions",
            params={"limit": 10_000},
            headers={"Authorization": f"Bearer {fuzz_daemon.token}"},
        ).json()["executions"]
    assert listed


def test_focus_leaves_one_target() -> None:
    body: dict[str, Any] = {"command": "x", "agent": "claude", "prompt": "p", "cwd": "/"}
    _focus(body)
    assert body == {"command": "x", "cwd": "/"}
    tasks: dict[str, Any] = {"tasks": [{"agent": "claude"}, {"timeout": 1.0}]}
    _focus(tasks)
    assert tasks["tasks"] == [{"agent": "claude", "prompt": ""}, {"timeout": 1.0, "argv": [TRUE]}]


def test_defang_rewrites_every_argv(tmp_path: Path) -> None:
    body: dict[str, Any] = {
        "argv": ["rm", "-rf", str(tmp_path)],
        "tasks": [{"argv": ["/sbin/reboot"]}, {"command": "x"}, "not a task", {"argv": []}],
    }
    _defang(body)
    assert body["argv"] == [TRUE, "-rf", str(tmp_path)]
    assert body["tasks"][0]["argv"] == [TRUE]
    assert body["tasks"][1] == {"command": "x"}
    assert body["tasks"][3]["argv"] == []
