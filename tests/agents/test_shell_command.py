"""shell_argv and is_claude_command."""

from __future__ import annotations

import pytest

from cc_executor.agents.shell import is_claude_command, shell_argv


def test_shell_argv_passes_the_command_as_one_argument() -> None:
    command = "echo 'a b' && $(rm -rf /) ; --help"
    assert shell_argv("/bin/zsh", command) == ["/bin/zsh", "-c", command]


@pytest.mark.parametrize(
    "command",
    [
        "claude -p hi",
        "claude",
        "/usr/local/bin/claude -p 'x' --output-format stream-json",
        "./node_modules/.bin/claude --version",
        "FOO=1 BAR='a b' claude -p hi",
        "env FOO=1 claude -p hi",
        "env -i PATH=/bin claude -p hi",
        "exec claude -p hi",
        "timeout 60 claude -p hi",
        "nice -n 5 claude -p hi",
        "  claude   -p hi  # trailing comment",
    ],
)
def test_claude_commands(command: str) -> None:
    assert is_claude_command(command)


@pytest.mark.parametrize(
    "command",
    [
        "echo claude",
        "claude-code -p hi",
        "myclaude -p hi",
        "/opt/claude/bin/other",
        "python -c 'import claude'",
        "",
        "FOO=1",
        "claude 'unbalanced",
        "# claude",
    ],
)
def test_other_commands(command: str) -> None:
    assert not is_claude_command(command)
