"""``cc-executor init``: a ``.env`` listing every setting, the state dir and the token.

Owns the first-run steps a user would otherwise do by hand; the env-file text comes from
:mod:`cc_executor.cli.envfile` and the token from :mod:`cc_executor.tokens`. It starts nothing:
``cc-executor server start`` does that.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from cc_executor.cli.console import EXIT_FAILURE, EXIT_USAGE, console, fail
from cc_executor.cli.envfile import render
from cc_executor.config import Settings
from cc_executor.tokens import load_or_create_token, read_token

__all__ = ["ENV_FILE_MODE", "ENV_FILE_NAME", "INIT_HEADER", "STATE_DIR_MODE", "init", "write_env"]

ENV_FILE_NAME = ".env"
ENV_FILE_MODE = 0o600  # users add CC_EXECUTOR_TOKEN to it; keep it private from the start
STATE_DIR_MODE = 0o700  # the token lives there
INIT_HEADER = (
    "# cc-executor settings, written by `cc-executor init` with every default. Read from the",
    "# working directory; CC_EXECUTOR_* environment variables take precedence over this file.",
)


def _target(path: Path | None) -> Path:
    if path is None:
        return Path.cwd() / ENV_FILE_NAME
    return path / ENV_FILE_NAME if path.is_dir() else path


def write_env(target: Path, *, force: bool) -> None:
    """Write the env file to ``target`` (mode 0600); ``FileExistsError`` unless ``force``."""
    text = render(INIT_HEADER).encode()
    if not force:
        # O_EXCL: a file that appears between a check and the write is never clobbered.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ENV_FILE_MODE)
        try:
            os.write(fd, text)
        finally:
            os.close(fd)
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, ENV_FILE_MODE)
    try:
        os.write(fd, text)
    finally:
        os.close(fd)
    os.replace(tmp, target)


def _ensure_state_dir(state_dir: Path) -> str:
    if state_dir.is_dir():
        mode = stat.S_IMODE(state_dir.stat().st_mode)
        note = "" if not mode & 0o077 else " - readable by others: chmod 700 it"
        return f"state dir {state_dir} exists (mode {mode:04o}){note}"
    state_dir.mkdir(parents=True, mode=STATE_DIR_MODE)
    state_dir.chmod(STATE_DIR_MODE)  # mkdir's mode is filtered by the umask
    return f"created state dir {state_dir} (mode {STATE_DIR_MODE:04o})"


def _ensure_token(settings: Settings) -> str:
    if not settings.auth_required:
        return "no token: auth is off (CC_EXECUTOR_AUTH_REQUIRED=false)"
    if settings.token is not None:
        return "token comes from CC_EXECUTOR_TOKEN; no token file needed"
    existed = read_token(settings.token_file) is not None
    load_or_create_token(settings.token_file)
    verb = "token file exists" if existed else "created token file"
    return f"{verb} {settings.token_file} (mode 0600); `cc-executor server token` prints it"


def init(
    path: Annotated[
        Path | None,
        typer.Option(
            "--path",
            help="Directory to write .env into, or the file to write (default ./.env).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a .env with every setting and its default, create the state dir and the token."""
    target = _target(path)
    if target.exists() and not force:
        fail(f"{target} exists; use --force to overwrite it", EXIT_FAILURE)
    try:
        write_env(target, force=force)
    except FileExistsError:
        fail(f"{target} exists; use --force to overwrite it", EXIT_FAILURE)
    except OSError as exc:
        fail(f"cannot write {target}: {exc}", EXIT_FAILURE)
    console.print(f"wrote {target} (every setting with its default, mode {ENV_FILE_MODE:04o})")
    try:
        settings = Settings(_env_file=target)
    except ValidationError as exc:
        fail(f"invalid settings (see `cc-executor config validate`): {exc}", EXIT_USAGE)
    try:
        console.print(_ensure_state_dir(settings.state_dir))
        console.print(_ensure_token(settings))
    except OSError as exc:
        fail(f"cannot prepare the state dir {settings.state_dir}: {exc}", EXIT_FAILURE)
    console.print("next: `cc-executor config validate`, then `cc-executor server start`")
