"""The light daemon entry: which argv it takes over, and that it leaves the rest to typer."""

from __future__ import annotations

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
