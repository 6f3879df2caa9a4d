"""``cc-executor config show|validate``: the settings, and whether this machine can serve them.

``show`` prints every setting and its value (the token masked). ``validate`` loads the settings
from ``CC_EXECUTOR_*`` variables and ``.env``, reports each invalid value (field, value, message;
exit 2), then checks what a start needs: the shell, a writable state dir, the port (free, or held
by our own daemon) and, with ``store = "redis"``, a Redis that answers PING (exit 1 if any fails).
It reads and probes only; it changes nothing.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
from dataclasses import asdict, dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import typer
from pydantic import SecretStr, ValidationError
from rich.table import Table

from cc_executor.cli.console import EXIT_FAILURE, EXIT_USAGE, build_settings, console
from cc_executor.cli.envfile import ENV_PREFIX
from cc_executor.config import Settings

__all__ = [
    "REDIS_TIMEOUT_S",
    "Check",
    "SettingError",
    "check_port",
    "check_redis",
    "check_shell",
    "check_state_dir",
    "config_app",
    "settings_errors",
    "settings_table",
]

config_app = typer.Typer(help="Inspect and validate the configuration.", no_args_is_help=True)

MASK = "********"
REDIS_TIMEOUT_S = 3.0  # connect + PING to a reachable Redis takes milliseconds
SECRET_FIELDS = frozenset({"token", "redis_url"})  # values shown masked in error reports


def _shown(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, list | dict | bool | int | float) or value is None:
        return value
    return str(value)


def settings_table(settings: Settings) -> dict[str, Any]:
    """Every field (and the derived file paths), JSON-ready, with secrets masked."""
    shown = {name: _shown(getattr(settings, name)) for name in type(settings).model_fields}
    shown["token_file"] = str(settings.token_file)
    shown["pid_file"] = str(settings.pid_file)
    shown["log_file"] = str(settings.log_file)
    return shown


@config_app.command()
def show(
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print every setting (from CC_EXECUTOR_* variables, .env and defaults)."""
    shown = settings_table(build_settings())
    if json_output:
        console.out(orjson.dumps(shown).decode(), highlight=False)
        return
    table = Table("setting", "value", "variable")
    for column in table.columns:
        column.overflow = "fold"
    fields = Settings.model_fields
    for name, value in shown.items():
        variable = f"CC_EXECUTOR_{name.upper()}" if name in fields else "(derived)"
        table.add_row(name, "-" if value is None else str(value), variable)
    console.print(table)


# --- validate ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SettingError:
    """One invalid setting: which field, the value given, and what is wrong with it."""

    field: str
    value: str
    message: str


@dataclass(frozen=True)
class Check:
    """One environment check of ``config validate``."""

    name: str
    ok: bool
    detail: str


def _value_text(field: str, value: Any) -> str:
    if field in SECRET_FIELDS and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


def settings_errors(exc: ValidationError) -> list[SettingError]:
    """Every error of a failed ``Settings()``, one per field, with the offending value."""
    found = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "(settings)"
        top = str(error["loc"][0]) if error["loc"] else ""
        found.append(SettingError(field, _value_text(top, error.get("input")), error["msg"]))
    return found


def check_shell(settings: Settings) -> Check:
    """The shell that runs ``command`` strings exists and is executable."""
    shell = settings.shell
    found = shell if os.sep in shell else shutil.which(shell)
    if found is None or not os.path.isfile(found):
        return Check("shell", False, f"{shell} not found")
    if not os.access(found, os.X_OK):
        return Check("shell", False, f"{found} is not executable")
    return Check("shell", True, found)


def check_state_dir(settings: Settings) -> Check:
    """The state dir is a writable directory, or can be created (its nearest parent is)."""
    path = settings.state_dir
    if path.exists():
        if not path.is_dir():
            return Check("state_dir", False, f"{path} is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            return Check("state_dir", False, f"{path} is not writable")
        mode = path.stat().st_mode & 0o777
        note = " (readable by others: chmod 700 it)" if mode & 0o077 else ""
        return Check("state_dir", True, f"{path} writable, mode {mode:04o}{note}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return Check("state_dir", True, f"{path} will be created (under {parent})")
    return Check("state_dir", False, f"{path} does not exist and {parent} is not writable")


def check_port(settings: Settings) -> Check:
    """The port can be bound, or is held by a cc-executor daemon (``/health`` answers)."""
    from cc_executor.server import daemon

    where = f"{settings.host}:{settings.port}"
    if settings.port == 0:
        return Check("port", True, "0: the OS picks a free port at start")
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the daemon binds: a port in TIME_WAIT from a previous run is free for it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((settings.host, settings.port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return Check("port", False, f"cannot bind {where}: {exc.strerror}")
        else:
            return Check("port", True, f"{where} is free")
    answer = daemon.health(settings)
    if answer is None:
        return Check("port", False, f"{where} is in use by another program")
    pid = daemon.running_pid(settings)
    owner = f"pid {pid}, " if pid is not None else ""
    version = answer.get("version")
    return Check("port", True, f"{where} is served by the cc-executor daemon ({owner}{version})")


def _masked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{netloc}"))


def check_redis(settings: Settings) -> Check | None:
    """With ``store = "redis"``: Redis at ``redis_url`` answers PING. ``None`` for other stores."""
    if settings.store != "redis":
        return None
    url = settings.redis_url
    if not url:
        return Check("redis", False, "store is redis but redis_url is not set")
    shown = _masked_url(url)
    try:
        import redis
    except ImportError:
        return Check(
            "redis", False, "the redis package is missing: pip install 'cc-executor[redis]'"
        )
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
        )
    except ValueError as exc:  # not a redis:// URL
        return Check("redis", False, f"{shown}: {exc}")
    try:
        client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        return Check("redis", False, f"{shown}: {exc}")
    finally:
        client.close()
    return Check("redis", True, f"{shown} answers PING")


def _checks(settings: Settings) -> list[Check]:
    checks = [check_shell(settings), check_state_dir(settings), check_port(settings)]
    redis_check = check_redis(settings)
    if redis_check is not None:
        checks.append(redis_check)
    return checks


def _report_errors(errors: list[SettingError], json_output: bool) -> None:
    if json_output:
        body = {"valid": False, "errors": [asdict(e) for e in errors], "checks": []}
        console.out(orjson.dumps(body).decode(), highlight=False)
        return
    console.print(f"[bold red]{len(errors)} invalid setting(s):[/]")
    for e in errors:
        top = e.field.split(".", 1)[0]
        variable = f" ({ENV_PREFIX}{top.upper()})" if top in Settings.model_fields else ""
        console.print(f"  {e.field}{variable} = {e.value!r}: {e.message}", markup=False)


@config_app.command()
def validate(
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check the settings and this machine (exit 2: invalid settings, 1: a check failed)."""
    try:
        settings = Settings()
    except ValidationError as exc:
        _report_errors(settings_errors(exc), json_output)
        raise typer.Exit(EXIT_USAGE) from None
    checks = _checks(settings)
    ok = all(c.ok for c in checks)
    if json_output:
        body = {"valid": ok, "errors": [], "checks": [asdict(c) for c in checks]}
        console.out(orjson.dumps(body).decode(), highlight=False)
    else:
        table = Table("check", "result", "detail")
        for column in table.columns:
            column.overflow = "fold"
        for c in checks:
            table.add_row(c.name, "[green]ok[/]" if c.ok else "[red]FAIL[/]", c.detail)
        console.print(table)
        console.print("configuration is valid" if ok else "[red]some checks failed[/]")
    if not ok:
        raise typer.Exit(EXIT_FAILURE)
