"""`cc-executor test assess`: each suite against a real daemon on a loopback port; the report."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from tests.server.conftest import Daemon, free_port, run_daemon
from typer.testing import CliRunner, Result

from cc_executor.cli.console import EXIT_DAEMON_UNREACHABLE
from cc_executor.cli.main import app
from cc_executor.client.assess import LARGE_OUTPUT_BYTES, Assessment, CheckResult, Outcome

pytestmark = pytest.mark.e2e

runner = CliRunner()
FAKE_CLAUDE_VERSION = "2.1.332 (Claude Code)"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with run_daemon(tmp_path_factory.mktemp("assess")) as d:
        yield d


def _env(daemon: Daemon) -> dict[str, str | None]:
    """The daemon's state dir (its token file) and port; no other CC_EXECUTOR_* variables."""
    env: dict[str, str | None] = {n: None for n in os.environ if n.startswith("CC_EXECUTOR_")}
    env["CC_EXECUTOR_STATE_DIR"] = str(daemon.settings.state_dir)
    env["CC_EXECUTOR_PORT"] = str(daemon.settings.port)
    return env


def _assess(daemon: Daemon, *args: str) -> Result:
    return runner.invoke(app, ["test", "assess", *args], env=_env(daemon))


def test_core_suite_passes_and_writes_the_report(daemon: Daemon, tmp_path: Path) -> None:
    report = tmp_path / "core.md"
    result = _assess(daemon, "core", "--output", str(report))
    assert result.exit_code == 0, result.output
    text = report.read_text()
    assert "result: **PASS** (5 passed, 0 failed, 0 skipped)" in text
    for check in ("streaming", "large_output", "pause_resume", "cancel_tree", "timeout"):
        assert re.search(rf"^\| {check} \| pass \| \d+\.\d\d s \|", text, re.M), check
        assert f"\n## {check}\n" in text
    assert f"{LARGE_OUTPUT_BYTES} bytes arrived whole" in text
    # The daemon runs in this process, so the marker scan really ran (and found the tree).
    assert re.search(r"canceled; none of the [1-9]\d* marked processes remain", text)
    assert "status timeout" in text
    assert "Raw output:" in text
    assert str(report) in result.output


def test_default_report_name_and_json(
    daemon: Daemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, ["test", "assess", "hooks", "--json"], env=_env(daemon), catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    assert body["suite"] == "hooks"
    assert body["passed"] is True
    assert [c["name"] for c in body["checks"]] == ["hook_status"]
    report = Path(body["report"])
    assert re.fullmatch(r"assessment-hooks-\d{8}T\d{6}Z\.md", report.name)
    assert report.parent == tmp_path
    assert '"configured"' in report.read_text()


def test_cli_suite_runs_the_commands(daemon: Daemon, tmp_path: Path) -> None:
    report = tmp_path / "cli.md"
    result = _assess(daemon, "cli", "-o", str(report))
    assert result.exit_code == 0, result.output
    text = report.read_text()
    assert "| server_status | pass |" in text
    assert "| config_show | pass |" in text
    assert f"--port {daemon.settings.port}" in text


@pytest.fixture
def fake_claude_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Daemon]:
    """A daemon whose children's PATH has a fake `claude` (or, with param False, none at all)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if request.param:
        fake = bin_dir / "claude"
        fake.write_text(f"#!/bin/sh\necho '{FAKE_CLAUDE_VERSION}'\n")
        fake.chmod(0o755)
    # The children's base environment is taken when the app is created.
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with run_daemon(tmp_path) as d:
        yield d


@pytest.mark.parametrize("fake_claude_daemon", [True], indirect=True)
def test_claude_suite_with_the_cli_on_path(fake_claude_daemon: Daemon, tmp_path: Path) -> None:
    report = tmp_path / "claude.md"
    result = _assess(fake_claude_daemon, "claude", "-o", str(report))
    assert result.exit_code == 0, result.output
    text = report.read_text()
    assert "| claude_version | pass |" in text
    assert FAKE_CLAUDE_VERSION in text
    assert "| claude_live | skip |" in text
    assert "--live" in text


@pytest.mark.parametrize("fake_claude_daemon", [False], indirect=True)
def test_claude_suite_fails_without_the_cli(fake_claude_daemon: Daemon, tmp_path: Path) -> None:
    report = tmp_path / "claude.md"
    result = _assess(fake_claude_daemon, "claude", "-o", str(report))
    assert result.exit_code == 1, result.output
    text = report.read_text()
    assert "result: **FAIL** (0 passed, 1 failed, 1 skipped)" in text
    assert "| claude_version | fail |" in text
    assert "FAIL" in result.output


def test_unreachable_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env: dict[str, str | None] = {n: None for n in os.environ if n.startswith("CC_EXECUTOR_")}
    env["CC_EXECUTOR_STATE_DIR"] = str(tmp_path / "state")
    env["CC_EXECUTOR_PORT"] = str(free_port())
    result = runner.invoke(app, ["test", "assess", "core"], env=env)
    assert result.exit_code == EXIT_DAEMON_UNREACHABLE
    assert "is it running?" in result.output
    assert not list(tmp_path.glob("assessment-*.md"))


def test_unknown_suite_is_a_usage_error(daemon: Daemon) -> None:
    result = _assess(daemon, "everything")
    assert result.exit_code == 2


def test_markdown_fences_survive_backticks_and_long_output() -> None:
    output = "```\n" + "y" * 10_000
    assessment = Assessment(
        "core",
        "ws://127.0.0.1:1/ws/mcp",
        datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        checks=[
            CheckResult("a", Outcome.PASS, 0.5, "fine | really"),
            CheckResult("b", Outcome.FAIL, 1.25, "broken", output),
        ],
    )
    text = assessment.to_markdown()
    assert not assessment.passed
    assert "result: **FAIL** (1 passed, 1 failed, 0 skipped)" in text
    assert "| a | pass | 0.50 s | fine \\| really |" in text
    assert "\n````text\n```\n" in text  # a fence longer than any run of backticks inside
    assert "characters cut" in text
    assert len(text) < len(output)
