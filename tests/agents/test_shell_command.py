"""shell_argv, is_claude_command and the simple form (parse_claude_command)."""

from __future__ import annotations

import pytest

from cc_executor.agents.shell import (
    STREAM_JSON_FLAGS,
    is_claude_command,
    parse_claude_command,
    shell_argv,
)


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


# --- the simple form: parse_claude_command -----------------------------------------------------


@pytest.mark.parametrize(
    ("command", "argv", "prompt"),
    [
        ("claude -p 'What is 2+2?'", ["claude", "-p", "What is 2+2?"], "What is 2+2?"),
        (
            'claude --print "a b" --model sonnet',
            ["claude", "--print", "a b", "--model", "sonnet"],
            "a b",
        ),
        ("claude --model sonnet -p hi", ["claude", "--model", "sonnet", "-p", "hi"], "hi"),
        ("claude hi -p", ["claude", "hi", "-p"], "hi"),
        ("claude -p -- --help", ["claude", "-p", "--", "--help"], "--help"),
        ("claude -p --model=x hi", ["claude", "-p", "--model=x", "hi"], "hi"),
        # optional values take the next non-option word, like the CLI (`--debug hi` is a filter)
        ("claude -p --debug hi there", ["claude", "-p", "--debug", "hi", "there"], "there"),
        ("claude -pd hi there", ["claude", "-pd", "hi", "there"], "there"),
        ("claude -p --resume -c hi", ["claude", "-p", "--resume", "-c", "hi"], "hi"),
        # variadic options swallow words up to the next option
        (
            "claude -p --allowedTools Bash Read -- hi",
            ["claude", "-p", "--allowedTools", "Bash", "Read", "--", "hi"],
            "hi",
        ),
        ("./bin/claude -p ok", ["./bin/claude", "-p", "ok"], "ok"),
        ("claude -p 'it''s' \"#1 & <b>; $\"", None, None),  # `$` anywhere: the shell decides
        (
            'claude -p "rm -rf / ; echo pwned"',
            ["claude", "-p", "rm -rf / ; echo pwned"],
            "rm -rf / ; echo pwned",
        ),
        ("claude -p 'a\nb' ", ["claude", "-p", "a\nb"], "a\nb"),  # newline inside quotes: literal
        ("claude -p ''", ["claude", "-p", ""], ""),
        ("claude -p 'ünï ✓'", ["claude", "-p", "ünï ✓"], "ünï ✓"),
    ],
)
def test_simple_claude_commands(command: str, argv: list[str] | None, prompt: str | None) -> None:
    parsed = parse_claude_command(command)
    if argv is None:
        assert parsed is None
        return
    assert parsed is not None
    assert list(parsed.argv) == argv
    assert parsed.prompt == prompt


@pytest.mark.parametrize(
    "command",
    [
        'claude -p "$(rm -rf /)"',  # quoted, but the user may rely on the expansion
        "claude -p '$(rm -rf /)'",
        "claude -p `id`",
        'claude -p "`id`"',
        "claude -p $PROMPT",
        "claude -p hi | tee out",
        "claude -p hi > out",
        "claude -p hi < in",
        "claude -p hi; rm -rf /",
        "claude -p hi && echo done",
        "claude -p hi &",
        "(claude -p hi)",
        "claude -p hi\nrm -rf /",  # two commands
        "claude -p *.py",
        "claude -p what?",
        "claude -p ~/notes",
        "claude -p {a,b}",
        "claude -p hi # comment",
        "claude -p what\\ is",
        'claude -p "a\\"b"',
        "claude -p =ls",  # zsh expands =cmd
        "claude -p 'unbalanced",
        "claude -p ünï",  # unquoted non-ASCII
        "env X=1 claude -p hi",  # wrappers stay with the shell
        "exec claude -p hi",
        "claude hi",  # not print mode: interactive
        "claude --output-format stream-json hi",
        "claude -p doctor",  # a subcommand's name
        "claude mcp list -p",
        "'A'=1 claude -p hi",  # a quoted name is no assignment: the program would be `A=1`
        "A=1",
        "",
        "echo claude -p hi",
        "claude-code -p hi",
    ],
)
def test_not_simple_claude_commands(command: str) -> None:
    assert parse_claude_command(command) is None


def test_assignments_go_to_the_environment() -> None:
    parsed = parse_claude_command("A=1 B='x y' C= claude -p hi D=4")
    assert parsed is not None
    assert parsed.env == {"A": "1", "B": "x y", "C": ""}
    assert list(parsed.argv) == ["claude", "-p", "hi", "D=4"]
    quoted_value = parse_claude_command("A='=1' claude -p hi")
    assert quoted_value is not None
    assert quoted_value.env == {"A": "=1"}


@pytest.mark.parametrize(
    ("command", "added", "stream_json"),
    [
        ("claude -p hi", ["--output-format", "stream-json", "--verbose"], True),
        ("claude -p hi --output-format stream-json", ["--verbose"], True),
        ("claude -p hi --output-format=stream-json --verbose", [], True),
        ("claude -p hi --output-format text", [], False),
        ("claude -p hi --output-format=json", [], False),
        ("claude --output-format json -p hi --output-format stream-json --verbose", [], True),
    ],
)
def test_output_format_flags(command: str, added: list[str], stream_json: bool) -> None:
    parsed = parse_claude_command(command)
    assert parsed is not None
    assert parsed.added_flags() == added
    assert parsed.stream_json is stream_json
    # Added right after the program, the user's words follow unchanged and in order.
    assert parsed.run_argv("/opt/claude") == ["/opt/claude", *added, *parsed.argv[1:]]


def test_run_argv_replaces_only_the_prompt_word() -> None:
    parsed = parse_claude_command("claude --model m -p 'write it' --max-turns 2")
    assert parsed is not None
    amended = "write it\n\nshorter"
    assert parsed.run_argv(prompt=amended) == [
        "claude", *STREAM_JSON_FLAGS, "--model", "m", "-p", amended, "--max-turns", "2",
    ]  # fmt: skip
    unknown = parse_claude_command("claude -p --new-option v 'write it'")
    assert unknown is not None
    assert unknown.prompt is None  # `v` or `write it`? only the CLI knows
    with pytest.raises(ValueError, match="not known"):
        unknown.run_argv(prompt="x")
    assert unknown.run_argv() == [
        "claude",
        *STREAM_JSON_FLAGS,
        "-p",
        "--new-option",
        "v",
        "write it",
    ]


def test_every_simple_command_is_a_claude_command() -> None:
    for command in ("claude -p hi", "A=1 claude -p 'x y'", "/x/claude --print hi"):
        assert parse_claude_command(command) is not None
        assert is_claude_command(command)
