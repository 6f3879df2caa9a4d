"""The light daemon entry: which argv it takes over, and that it leaves the rest to typer."""

from __future__ import annotations

from pathlib import Path

import pytest

from cc_executor.cli.daemon_entry import _parse, run_foreground


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["server", "start", "--foreground"], {}),
        (["server", "start", "--port", "9000", "--foreground"], {"port": "9000"}),
        (
            ["server", "start", "--foreground", "--host=::1", "--port=1"],
            {"host": "::1", "port": "1"},
        ),
        (["server", "start"], None),  # background start: typer
        (["server", "start", "--foreground", "--help"], None),
        (["server", "start", "--foreground", "--port"], None),  # missing value: typer's error
        (["server", "start", "--foreground", "--port", "1", "--port", "2"], None),
        (["server", "stop"], None),
        (["run", "echo"], None),
        ([], None),
    ],
)
def test_parse(argv: list[str], expected: dict[str, str] | None) -> None:
    assert _parse(argv) == expected


def test_other_commands_fall_through() -> None:
    assert run_foreground(["server", "status"]) is None


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["server", "start"], {}),
        (["server", "start", "--port", "9000"], {"port": "9000"}),
        (["server", "start", "--foreground"], None),  # the foreground path's
        (["server", "start", "--help"], None),
        (["server", "stop"], None),
    ],
)
def test_parse_background(argv: list[str], expected: dict[str, str] | None) -> None:
    assert _parse(argv, foreground=False) == expected


def test_the_console_script_starts_a_daemon_without_the_cli_stack(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.server.conftest import free_port

    from cc_executor.config import Settings
    from cc_executor.server import daemon

    settings = Settings(port=free_port(), state_dir=tmp_path / "state")
    env = {**os.environ, **daemon.settings_env(settings)}
    probe = (
        "import sys; from cc_executor.cli.daemon_entry import main; sys.argv = ['cc-executor', "
        "'server', 'start']\ntry:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print('typer' in sys.modules, 'rich' in sys.modules, code)"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        lines = done.stdout.splitlines()
        assert lines[0].startswith("cc-executor daemon started (pid ")
        assert lines[-1] == "False False 0"  # typer and rich were never imported
        assert daemon.status(settings)["healthy"] is True
    finally:
        daemon.stop(settings)
