"""``execute`` params -> ExecutionSpec: command, argv, agent, claude command, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cc_executor.agents.shell import STREAM_JSON_FLAGS
from cc_executor.config import Settings
from cc_executor.errors import InvalidParams, ServiceError
from cc_executor.protocol import ExecuteParams
from cc_executor.scheduler import (
    CLI_MAX_RETRIES_ENV,
    ClaudeRunConfig,
    ClaudeRunPolicy,
    build_execute_spec,
)


def spec_of(config: ClaudeRunConfig, **params: object):  # type: ignore[no-untyped-def]
    return build_execute_spec(ExecuteParams(**params), shell="/bin/sh", claude=config)  # type: ignore[arg-type]


def test_plain_command_and_argv_have_no_policy(claude_config: ClaudeRunConfig) -> None:
    spec = spec_of(claude_config, command="echo hi", stdin=True)
    assert spec.argv == ["/bin/sh", "-c", "echo hi"]
    assert spec.stdin
    assert spec.attempt_policy is None
    assert spec.agent is None
    spec = spec_of(claude_config, argv=["echo", "a b"], timeout=5.0)
    assert spec.display_command == "echo 'a b'"
    assert spec.timeout == 5.0


def test_agent_spec(claude_config: ClaudeRunConfig, fake_claude: Path, tmp_path: Path) -> None:
    spec = spec_of(
        claude_config,
        agent="claude",
        prompt="x" * 500,
        agent_options={"model": "sonnet", "cwd": str(tmp_path)},
        env={"A": "1"},
        idle_timeout=3.0,
    )
    assert spec.argv[0] == str(fake_claude)
    assert spec.argv[-2:] == ["--", "x" * 500]
    assert "--model=sonnet" in spec.argv
    assert spec.cwd == str(tmp_path)
    assert not spec.stdin
    assert spec.agent == "claude"
    assert spec.env == {CLI_MAX_RETRIES_ENV: "0", "A": "1"}
    assert spec.idle_timeout == 3.0
    assert len(spec.display_command) < 400
    assert spec.display_command.endswith("…'")
    assert isinstance(spec.attempt_policy, ClaudeRunPolicy)
    assert spec.env_hook is not None
    env = spec.env_hook({"CLAUDECODE": "1", "PATH": "/bin", "CC_EXECUTOR_TOKEN": "t"}, "e1")
    assert env == {"PATH": "/bin", "CC_EXECUTOR_EXECUTION_ID": "e1"}


def test_agent_defaults_from_config(fake_claude: Path) -> None:
    config = ClaudeRunConfig(
        claude_path=str(fake_claude), permission_mode="plan", idle_timeout_s=9.0
    )
    spec = spec_of(config, agent="claude", prompt="hi", env={CLI_MAX_RETRIES_ENV: "3"})
    assert "--permission-mode=plan" in spec.argv
    assert spec.idle_timeout == 9.0
    assert spec.env[CLI_MAX_RETRIES_ENV] == "3"


def test_shell_claude_command_keeps_the_string(claude_config: ClaudeRunConfig) -> None:
    spec = spec_of(claude_config, command="env X=1 claude -p hi | tee out")
    assert spec.argv == ["/bin/sh", "-c", "env X=1 claude -p hi | tee out"]
    assert spec.agent == "claude"
    assert isinstance(spec.attempt_policy, ClaudeRunPolicy)


def test_simple_claude_command_runs_as_argv(
    claude_config: ClaudeRunConfig, fake_claude: Path
) -> None:
    command = "LANG=C claude -p 'What is 2+2?' --model sonnet"
    spec = spec_of(claude_config, command=command, env={"A": "1", "LANG": "x"}, stdin=True)
    assert spec.argv == [
        str(fake_claude), *STREAM_JSON_FLAGS, "-p", "What is 2+2?", "--model", "sonnet",
    ]  # fmt: skip
    assert spec.display_command == command
    assert spec.env == {CLI_MAX_RETRIES_ENV: "0", "A": "1", "LANG": "C"}
    assert spec.stdin  # as asked, like any command
    assert spec.agent == "claude"
    assert isinstance(spec.attempt_policy, ClaudeRunPolicy)


def test_simple_claude_command_with_a_path_runs_that_path(claude_config: ClaudeRunConfig) -> None:
    spec = spec_of(claude_config, command="./node_modules/.bin/claude -p hi --output-format json")
    assert spec.argv == ["./node_modules/.bin/claude", "-p", "hi", "--output-format", "json"]


def test_hostile_prompt_stays_one_literal_word(claude_config: ClaudeRunConfig) -> None:
    spec = spec_of(claude_config, command="claude -p 'rm -rf / ; echo pwned' --verbose")
    assert spec.argv[-3:] == ["-p", "rm -rf / ; echo pwned", "--verbose"]
    assert spec.argv[0] != "/bin/sh"
    expanding = spec_of(claude_config, command='claude -p "$(rm -rf /)"')
    assert expanding.argv == ["/bin/sh", "-c", 'claude -p "$(rm -rf /)"']


def test_bare_claude_not_found_is_left_to_the_shell(tmp_path: Path) -> None:
    config = ClaudeRunConfig(search_path=str(tmp_path))
    spec = spec_of(config, command="claude -p hi")
    assert spec.argv == ["/bin/sh", "-c", "claude -p hi"]  # the shell says "not found"
    assert spec.agent == "claude"


def test_bare_claude_is_looked_up_on_the_request_path(fake_claude: Path, tmp_path: Path) -> None:
    config = ClaudeRunConfig(search_path=str(tmp_path / "elsewhere"))
    spec = spec_of(config, command="claude -p hi", env={"PATH": str(fake_claude.parent)})
    assert spec.argv[0] == str(fake_claude)
    spec = spec_of(config, command=f"PATH={fake_claude.parent} claude -p hi")
    assert spec.argv[0] == str(fake_claude)


def test_unknown_agent_lists_known_ones(claude_config: ClaudeRunConfig) -> None:
    with pytest.raises(InvalidParams, match="known agents: claude") as caught:
        spec_of(claude_config, agent="gpt", prompt="hi")
    assert caught.value.data["known_agents"] == ["claude"]


def test_bad_agent_options(claude_config: ClaudeRunConfig) -> None:
    with pytest.raises(InvalidParams, match="max_turns") as caught:
        spec_of(claude_config, agent="claude", prompt="hi", agent_options={"max_turns": 0})
    assert caught.value.data["errors"][0]["loc"] == ["agent_options", "max_turns"]
    with pytest.raises(InvalidParams, match="empty"):
        spec_of(claude_config, agent="claude", prompt="  ")


def test_missing_cli_names_the_setting(tmp_path: Path) -> None:
    config = ClaudeRunConfig(claude_path=str(tmp_path / "no-claude"))
    with pytest.raises(ServiceError, match="CC_EXECUTOR_CLAUDE_PATH"):
        spec_of(config, agent="claude", prompt="hi")
    with pytest.raises(ServiceError, match="CC_EXECUTOR_CLAUDE_PATH"):
        spec_of(ClaudeRunConfig(search_path=str(tmp_path)), agent="claude", prompt="hi")


def test_config_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path,
        claude_path="/x/claude",
        claude_permission_mode="acceptEdits",
        retry_attempts=2,
        retry_min_wait_s=0.1,
        retry_max_wait_s=0.5,
        token_limit_retries=1,
        usage_limit_max_wait_s=7,
        claude_result_grace_s=3,
    )
    config = ClaudeRunConfig.from_settings(settings, search_path="/bin")
    assert config.claude_path == "/x/claude"
    assert config.permission_mode == "acceptEdits"
    assert config.limits.backoff.attempts == 2
    assert config.limits.backoff.max_wait_s == 0.5
    assert config.limits.token_limit_retries == 1
    assert config.limits.usage_limit_max_wait_s == 7
    assert config.limits.result_grace_s == 3
    assert config.search_path == "/bin"
    with pytest.raises(ValueError, match="claude_permission_mode"):
        ClaudeRunConfig.from_settings(Settings(state_dir=tmp_path, claude_permission_mode="nope"))
