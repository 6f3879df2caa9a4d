"""Every amend rule, on its own and in order."""

from __future__ import annotations

import pytest

from cc_executor.api import AMEND_RULES, amend
from cc_executor.api.amend import BOUNDED_COMMANDS, NO_QUESTIONS, NON_INTERACTIVE_COMMANDS


def rule(name: str):  # type: ignore[no-untyped-def]
    (found,) = [r for r in AMEND_RULES if r.name == name]
    return found.apply


def test_rules_are_documented_in_order() -> None:
    assert [r.name for r in AMEND_RULES] == [
        "normalize_whitespace",
        "unwrap_claude_command",
        "print_flag",
        "no_interactive_questions",
        "non_interactive_commands",
        "bounded_commands",
    ]
    assert all(r.description for r in AMEND_RULES)


def test_normalize_whitespace() -> None:
    apply = rule("normalize_whitespace")
    assert apply("  a\r\nb\rc  ") == "a\nb\nc"
    assert apply("clean") is None


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("claude -p 'What is 2+2?'", "What is 2+2?"),
        ('claude --print --model=x "Hello there"', "Hello there"),
        ("/usr/bin/claude -p -- --help me", "--help me"),
        ("claude -p --verbose", None),
        ("claude 'no print flag'", None),
        ("echo -p hi", None),
        ("claude -p 'unbalanced", None),
        ("claude -p --", None),
    ],
)
def test_unwrap_claude_command(prompt: str, expected: str | None) -> None:
    assert rule("unwrap_claude_command")(prompt) == expected


def test_print_flag() -> None:
    apply = rule("print_flag")
    assert apply("Use claude --print to summarise") == "Use claude -p to summarise"
    assert apply("print the file") is None


@pytest.mark.parametrize(
    "prompt",
    [
        "Ask me which database to use",
        "Create it, then wait for my confirmation",
        "Before proceeding, ask which port",
        "Confirm with me before deleting",
        "Wait for user input",
        "let me know before you push",
    ],
)
def test_no_interactive_questions(prompt: str) -> None:
    amended = rule("no_interactive_questions")(prompt)
    assert amended == f"{prompt}\n\n{NO_QUESTIONS}"
    assert rule("no_interactive_questions")(amended) is None  # applied once


@pytest.mark.parametrize(
    "prompt",
    [
        "Open vim config.py and fix it",
        "Run git rebase -i HEAD~3",
        "Start python -i",
        "use less log",
    ],
)
def test_non_interactive_commands(prompt: str) -> None:
    assert rule("non_interactive_commands")(prompt) == f"{prompt}\n\n{NON_INTERACTIVE_COMMANDS}"


@pytest.mark.parametrize(
    "prompt", ["tail -f the log", "run jest --watch", "npm run dev", "keep the server running"]
)
def test_bounded_commands(prompt: str) -> None:
    assert rule("bounded_commands")(prompt) == f"{prompt}\n\n{BOUNDED_COMMANDS}"


def test_amend_applies_rules_in_order() -> None:
    amended = amend("  claude -p 'Ask me, then tail -f app.log'  ")
    assert amended.applied == (
        "normalize_whitespace",
        "unwrap_claude_command",
        "no_interactive_questions",
        "bounded_commands",
    )
    assert amended.prompt.startswith("Ask me, then tail -f app.log\n\n")


def test_amend_leaves_a_good_prompt_alone() -> None:
    amended = amend("Write a fibonacci function in fib.py")
    assert amended.prompt == "Write a fibonacci function in fib.py"
    assert amended.applied == ()
