"""`cc-executor init`: .env with every default, no overwrite without --force, state, token."""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cc_executor.cli.envfile import EXAMPLE_HEADER, render
from cc_executor.cli.init_cmd import INIT_HEADER
from cc_executor.cli.main import app
from cc_executor.config import Settings

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory with no CC_EXECUTOR_* variables but the state dir."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    for name in [n for n in os.environ if n.startswith("CC_EXECUTOR_")]:
        monkeypatch.delenv(name)
    state_dir = tmp_path / "nested" / "state"
    monkeypatch.setenv("CC_EXECUTOR_STATE_DIR", str(state_dir))
    return state_dir


def _init(*args: str) -> Result:
    return runner.invoke(app, ["init", *args])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_every_setting_creates_the_state_dir_and_token(state: Path) -> None:
    result = _init()
    assert result.exit_code == 0, result.output
    env_file = Path.cwd() / ".env"
    text = env_file.read_text()
    assert text == render(INIT_HEADER)
    for name, field in Settings.model_fields.items():
        assert f"CC_EXECUTOR_{name.upper()}=" in text
        assert str(field.description) in text
    assert "CC_EXECUTOR_PORT=8003" in text
    assert _mode(env_file) == 0o600
    assert _mode(state) == 0o700
    token_file = state / "token"
    assert _mode(token_file) == 0o600
    assert len(token_file.read_text().strip()) >= 40
    assert token_file.read_text().strip() not in result.output  # paths, never the secret
    for what in (str(env_file), f"created state dir {state}", f"created token file {token_file}"):
        assert what in result.output


def test_the_written_file_loads_as_the_defaults(state: Path) -> None:
    assert _init().exit_code == 0
    loaded = Settings(_env_file=Path.cwd() / ".env")
    defaults = Settings(_env_file=None)
    assert loaded.model_dump() == defaults.model_dump()


def test_refuses_to_overwrite_without_force(state: Path) -> None:
    env_file = Path.cwd() / ".env"
    env_file.write_text("CC_EXECUTOR_PORT=9999\n")
    result = _init()
    assert result.exit_code == 1
    assert "--force" in result.output
    assert env_file.read_text() == "CC_EXECUTOR_PORT=9999\n"
    assert not state.exists()  # refused before doing anything else


def test_force_overwrites(state: Path) -> None:
    env_file = Path.cwd() / ".env"
    env_file.write_text("CC_EXECUTOR_PORT=9999\n")
    result = _init("--force")
    assert result.exit_code == 0, result.output
    assert env_file.read_text() == render(INIT_HEADER)
    assert _mode(env_file) == 0o600


def test_path_may_be_a_directory_or_a_file(state: Path, tmp_path: Path) -> None:
    target_dir = tmp_path / "conf"
    target_dir.mkdir()
    assert _init("--path", str(target_dir)).exit_code == 0
    assert (target_dir / ".env").read_text() == render(INIT_HEADER)
    target_file = tmp_path / "conf" / "cc-executor.env"
    assert _init("--path", str(target_file)).exit_code == 0
    assert target_file.read_text() == render(INIT_HEADER)
    assert not (Path.cwd() / ".env").exists()


def test_existing_state_and_token_are_kept(state: Path) -> None:
    state.mkdir(parents=True, mode=0o700)
    (state / "token").write_text("kept-token-value")
    (state / "token").chmod(0o600)
    result = _init()
    assert result.exit_code == 0, result.output
    assert (state / "token").read_text() == "kept-token-value"
    assert "state dir" in result.output
    assert "exists" in result.output


def test_no_token_file_when_the_token_comes_from_the_environment(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC_EXECUTOR_TOKEN", "from-the-environment")
    result = _init()
    assert result.exit_code == 0, result.output
    assert not (state / "token").exists()
    assert "CC_EXECUTOR_TOKEN" in result.output


def test_invalid_environment_is_reported_with_exit_2(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC_EXECUTOR_PORT", "not-a-port")
    result = _init()
    assert result.exit_code == 2
    assert "port" in result.output


def test_env_example_script_uses_the_same_generator() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_env_example.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render is render
    assert render().startswith("\n".join(EXAMPLE_HEADER))
