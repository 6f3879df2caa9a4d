"""Settings: defaults a user relies on, the environment prefix, and `.env.example` in step."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cc_executor.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_secure_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CC_EXECUTOR_HOST", "CC_EXECUTOR_PORT", "CC_EXECUTOR_AUTH_REQUIRED"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.host == "127.0.0.1"
    assert settings.port == 8003
    assert settings.auth_required is True
    assert settings.terminate_grace_s == 5.0
    assert settings.on_disconnect == "keep"
    assert settings.max_frame_bytes == 1024 * 1024


def test_environment_prefix_and_legacy_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_EXECUTOR_TERMINATE_GRACE_S", "1.5")
    monkeypatch.setenv("CC_EXECUTOR_SHELL", "/bin/sh")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.terminate_grace_s == 1.5
    assert settings.shell == "/bin/sh"
    assert settings.log_level == "DEBUG"


def test_env_example_lists_every_setting_with_its_default() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_env_example.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / ".env.example").read_text() == module.render(), (
        "run: python scripts/gen_env_example.py > .env.example"
    )
    for name in Settings.model_fields:
        assert f"CC_EXECUTOR_{name.upper()}" in (ROOT / ".env.example").read_text()
