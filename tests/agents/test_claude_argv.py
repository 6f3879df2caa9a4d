"""build_argv, ClaudeOptions, find_claude and child_env."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cc_executor.agents.claude import (
    CLAUDE_PATH_SETTING,
    EXECUTION_ID_ENV,
    PARENT_SESSION_ENV,
    ClaudeAdapter,
    ClaudeOptions,
    build_argv,
    child_env,
    find_claude,
)
from cc_executor.errors import InvalidParams, ServiceError

CLAUDE = "/opt/claude/bin/claude"
BASE = [CLAUDE, "-p", "--output-format", "stream-json", "--verbose"]

HOSTILE_PROMPTS = [
    "--help",
    "-p",
    "-",
    "--",
    "--dangerously-skip-permissions",
    "$(rm -rf /)",
    "`id`",
    "'; echo pwned",
    '"; echo pwned; "',
    "line1\nline2\n--verbose",
    "ünïcödé ✓ 日本語 🚀",
    "a" * 100_000,
]


@pytest.mark.parametrize("prompt", HOSTILE_PROMPTS)
def test_hostile_prompt_is_one_verbatim_argument_after_double_dash(prompt: str) -> None:
    argv = build_argv(prompt, claude_path=CLAUDE)
    assert argv == [*BASE, "--", prompt]
    assert argv.count(prompt) == 1 or prompt in ("-p", "--")
    assert argv[-2:] == ["--", prompt]


@given(st.text(min_size=1).filter(lambda s: s.strip() and "\x00" not in s))
def test_any_prompt_is_last_and_unchanged(prompt: str) -> None:
    options = ClaudeOptions(allowed_tools=["Bash", "Read"], add_dirs=["/tmp"])
    argv = build_argv(prompt, options, claude_path=CLAUDE)
    assert argv[-1] == prompt
    assert argv[-2] == "--"
    assert all(isinstance(a, str) for a in argv)


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_empty_prompt_is_refused(prompt: str) -> None:
    with pytest.raises(InvalidParams):
        build_argv(prompt, claude_path=CLAUDE)


def test_nul_in_prompt_is_refused() -> None:
    with pytest.raises(InvalidParams):
        build_argv("a\x00b", claude_path=CLAUDE)
    with pytest.raises(InvalidParams):
        build_argv("ok", ClaudeOptions(append_system_prompt="x\x00"), claude_path=CLAUDE)


def test_defaults_add_no_flags() -> None:
    assert build_argv("hi", claude_path=CLAUDE) == [*BASE, "--", "hi"]
    assert "--dangerously-skip-permissions" not in build_argv("hi", claude_path=CLAUDE)


def test_every_option() -> None:
    options = ClaudeOptions(
        model="sonnet",
        fallback_model="haiku",
        max_turns=3,
        permission_mode="acceptEdits",
        allowed_tools=["Bash(git *)", "Read"],
        disallowed_tools=["WebFetch"],
        append_system_prompt="-starts with a dash\nand has lines",
        mcp_config=["/etc/mcp.json", '{"mcpServers": {}}'],
        add_dirs=["/data", "/more"],
        resume="0f8fad5b-d9cb-469f-a165-70867728950e",
        cwd="/work",
    )
    argv = build_argv("do it", options, claude_path=CLAUDE)
    assert argv == [
        *BASE,
        "--model=sonnet",
        "--fallback-model=haiku",
        "--max-turns=3",
        "--permission-mode=acceptEdits",
        "--allowedTools",
        "Bash(git *)",
        "Read",
        "--disallowedTools",
        "WebFetch",
        "--append-system-prompt=-starts with a dash\nand has lines",
        "--add-dir",
        "/data",
        "/more",
        "--mcp-config",
        "/etc/mcp.json",
        '{"mcpServers": {}}',
        "--resume=0f8fad5b-d9cb-469f-a165-70867728950e",
        "--",
        "do it",
    ]


def test_session_flags() -> None:
    sid = "123e4567-e89b-12d3-a456-426614174000"
    argv = build_argv("x", ClaudeOptions(session_id=sid), claude_path=CLAUDE)
    assert f"--session-id={sid}" in argv
    assert "--continue" in build_argv("x", ClaudeOptions(continue_session=True), claude_path=CLAUDE)


def test_permission_mode_default_comes_from_the_caller() -> None:
    argv = build_argv("x", claude_path=CLAUDE, default_permission_mode="plan")
    assert "--permission-mode=plan" in argv
    own = ClaudeOptions(permission_mode="acceptEdits")
    argv = build_argv("x", own, claude_path=CLAUDE, default_permission_mode="plan")
    assert "--permission-mode=acceptEdits" in argv
    assert "--permission-mode=plan" not in argv


def test_skipping_permissions_is_explicit() -> None:
    argv = build_argv("x", ClaudeOptions(dangerously_skip_permissions=True), claude_path=CLAUDE)
    assert "--dangerously-skip-permissions" in argv
    with pytest.raises(ValidationError):
        ClaudeOptions(permission_mode="bypassPermissions")
    ok = ClaudeOptions(permission_mode="bypassPermissions", dangerously_skip_permissions=True)
    assert "--permission-mode=bypassPermissions" in build_argv("x", ok, claude_path=CLAUDE)
    with pytest.raises(InvalidParams):
        build_argv("x", claude_path=CLAUDE, default_permission_mode="bypassPermissions")


@pytest.mark.parametrize(
    "bad",
    [
        {"unknown": 1},
        {"allowed_tools": ["--help"]},
        {"add_dirs": [""]},
        {"model": "--evil"},
        {"resume": "-x"},
        {"session_id": "not-a-uuid"},
        {"max_turns": 0},
        {"resume": "abc", "continue_session": True},
        {"permission_mode": "yolo"},
    ],
)
def test_bad_options_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ClaudeOptions.model_validate(bad)


def test_adapter_uses_its_path_and_default() -> None:
    adapter = ClaudeAdapter(claude_path=CLAUDE, default_permission_mode="acceptEdits")
    argv = adapter.argv("hello")
    assert argv[0] == CLAUDE
    assert "--permission-mode=acceptEdits" in argv
    assert adapter.env({"A": "1"}, execution_id="e1") == {"A": "1", EXECUTION_ID_ENV: "e1"}


# --- find_claude ---------------------------------------------------------------------------


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_claude_prefers_the_setting(tmp_path: Path) -> None:
    configured = _executable(tmp_path / "my-claude")
    on_path = tmp_path / "bin"
    on_path.mkdir()
    _executable(on_path / "claude")
    assert find_claude(str(configured), search_path=str(on_path)) == str(configured)


def test_find_claude_falls_back_to_path(tmp_path: Path) -> None:
    found = _executable(tmp_path / "claude")
    assert find_claude(None, search_path=str(tmp_path)) == str(found)


def test_find_claude_missing_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as caught:
        find_claude(None, search_path=str(tmp_path))
    assert CLAUDE_PATH_SETTING in caught.value.message
    assert caught.value.data["setting"] == CLAUDE_PATH_SETTING
    with pytest.raises(ServiceError) as caught:
        find_claude(str(tmp_path / "nope"), search_path=str(tmp_path))
    assert caught.value.data["configured"] == str(tmp_path / "nope")


def test_find_claude_refuses_a_non_executable_setting(tmp_path: Path) -> None:
    plain = tmp_path / "claude"
    plain.write_text("")
    os.chmod(plain, 0o644)
    with pytest.raises(ServiceError):
        find_claude(str(plain), search_path="")


# --- child_env -----------------------------------------------------------------------------


def test_child_env_strips_parent_session_and_token() -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "ANTHROPIC_API_KEY": "k",
        "CLAUDECODE": "1",
        "CLAUDE_CODE_ENTRYPOINT": "cli",
        "CLAUDE_CODE_SSE_PORT": "1234",
        "CLAUDE_CODE_SESSION_ID": "s",
        "CLAUDE_CODE_MESSAGING_SOCKET": "/tmp/x.sock",
        "CC_EXECUTOR_TOKEN": "secret",
        EXECUTION_ID_ENV: "stale",
    }
    env = child_env(base, execution_id="exec-1")
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "ANTHROPIC_API_KEY": "k",
        EXECUTION_ID_ENV: "exec-1",
    }
    assert base["CLAUDECODE"] == "1"  # the input is not modified
    assert {"CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CC_EXECUTOR_TOKEN"} <= PARENT_SESSION_ENV
