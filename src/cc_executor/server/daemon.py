"""The daemon's lifecycle: run uvicorn in the foreground, or start, stop and query one in the
background.

Owns the pid file, the listening socket and uvicorn's configuration; the app itself (and its
lifespan, which cancels every running group on shutdown) is :func:`create_app`'s.

One daemon per state dir and port. The pid file ``settings.pid_file`` is ``flock``-ed by the
running daemon for its whole life, so "is one running?" is answered by the kernel, not by
guessing whether a pid was reused: a file nobody holds is stale, whatever it says. The port is
bound here, before uvicorn starts, so a port already taken gives one clear message instead of a
traceback.

Shutdown is uvicorn's: SIGTERM or SIGINT stops accepting, closes connections, then the lifespan
cancels the running groups; the pid file is removed on the way out. The token never reaches argv
or a log line: a background daemon reads it from the token file or inherits
``CC_EXECUTOR_TOKEN`` through its environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

from loguru import logger
from pydantic import SecretStr

from cc_executor import __version__
from cc_executor.config import Settings
from cc_executor.errors import ServiceError

__all__ = [
    "DAEMON_READY_TIMEOUT_S",
    "DAEMON_STOP_TIMEOUT_S",
    "DaemonAlreadyRunning",
    "DaemonError",
    "DaemonStartFailed",
    "health",
    "probe_host",
    "run",
    "running_pid",
    "settings_env",
    "start_background",
    "started_lines",
    "status",
    "stop",
]

DAEMON_READY_TIMEOUT_S = 15.0  # imports + app creation + bind; a healthy start takes ~1 s
DAEMON_STOP_TIMEOUT_S = 30.0  # graceful shutdown + TERM grace of the groups + sweep
GRACEFUL_SHUTDOWN_S = 10  # uvicorn: wait this long for open connections before closing them
HEALTH_TIMEOUT_S = 2.0  # one /health request to a local daemon
READY_POLL_S = 0.05  # readiness has no notification across processes; poll, bounded
KILL_WAIT_S = 5.0  # after SIGKILL, the kernel reaps promptly
TRACE_LEVEL = 5  # loguru's and uvicorn's TRACE, below stdlib DEBUG
LOG_TAIL_BYTES = 4000  # how much of the daemon log to show when a start fails
_PID_FILE_MODE = 0o644
_STATE_DIR_MODE = 0o700

# Popen objects of daemons this process started, so stop() can reap them (no zombie, no warning).
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


class DaemonError(ServiceError):
    """The daemon could not be started, stopped or reached as asked."""


class DaemonAlreadyRunning(DaemonError):
    """A daemon already serves this state dir and port (or the port is taken)."""


class DaemonStartFailed(DaemonError):
    """The background daemon exited or did not become ready in time."""


class _Terminated(Exception):
    """SIGTERM arrived; unwinds ``run()`` so the pid file is removed."""


def probe_host(host: str) -> str:
    """The address a local client connects to for a daemon bound to ``host``."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - compared, not bound
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _url(settings: Settings) -> str:
    return f"ws://{_bracket(probe_host(settings.host))}:{settings.port}/ws/mcp"


def _already_running(settings: Settings, pid: int | None) -> DaemonAlreadyRunning:
    where = f"{settings.host}:{settings.port}"
    suffix = f" (pid {pid})" if pid is not None else ""
    return DaemonAlreadyRunning(
        f"cc-executor daemon already running on {where}{suffix}", pid=pid, port=settings.port
    )


# --- pid file ---------------------------------------------------------------------------------
def running_pid(settings: Settings) -> int | None:
    """The pid of the daemon holding ``settings.pid_file``'s lock, or ``None``."""
    try:
        fd = os.open(settings.pid_file, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None  # nobody holds it: a stale file from a daemon that died
    finally:
        os.close(fd)


def _acquire_pid_file(settings: Settings) -> int:
    """Lock and write the pid file; the returned fd holds the lock until closed."""
    path = settings.pid_file
    path.parent.mkdir(parents=True, exist_ok=True, mode=_STATE_DIR_MODE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, _PID_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise _already_running(settings, int(text) if text.isdigit() else None) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _release_pid_file(settings: Settings, fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        settings.pid_file.unlink()
    os.close(fd)  # releases the lock


# --- socket -------------------------------------------------------------------------------------
def _bind(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only when sock.proto is
    # IPPROTO_TCP (accepted sockets copy it from this one). With 0, Nagle holds a notification
    # that follows a response until the client's delayed ACK, ~40 ms later.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        if exc.errno != errno.EADDRINUSE:
            raise DaemonError(f"cannot bind {settings.host}:{settings.port}: {exc}") from None
        if health(settings) is not None:
            raise _already_running(settings, None) from None
        raise DaemonAlreadyRunning(
            f"port {settings.port} on {settings.host} is already in use by another program",
            port=settings.port,
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


# --- foreground ---------------------------------------------------------------------------------
def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def run(settings: Settings) -> int:
    """Serve in the foreground until SIGTERM or SIGINT; returns the process exit code.

    Raises :class:`DaemonAlreadyRunning` when this state dir and port already have a daemon.
    """
    import uvicorn

    from cc_executor.logging import configure_logging
    from cc_executor.server.app import create_app, resolve_token

    token = resolve_token(settings)  # creates the 0600 token file on first start
    configure_logging(settings.log_level, settings.log_format, secrets=(token or "",))
    pid_fd = _acquire_pid_file(settings)
    previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    sock: socket.socket | None = None
    try:
        sock = _bind(settings)
        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            ws_max_size=settings.ws_hard_max_frame_bytes,
            ws_ping_interval=settings.ws_ping_interval_s,
            ws_ping_timeout=settings.ws_ping_timeout_s,
            ws_per_message_deflate=False,  # costs more CPU than it saves on loopback
            # The plain asyncio loop gave a faster first byte than uvloop here (PERFORMANCE.md);
            # the factory adds a pidfd child watcher on Python 3.11.
            loop=f"{__name__}:loop_factory",
            log_config=None,
            # configure_logging routes stdlib logging into loguru with the root at level 0, so
            # without a level here websockets' protocol (logger "uvicorn.error") sees DEBUG
            # enabled and builds a log record for every frame, and uvicorn wraps the app in its
            # TRACE message logger: together they cost more than the rest of the output path.
            log_level=_stdlib_level(settings.log_level),
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            server_header=False,
        )
        logger.info(
            "cc-executor {} serving {} (pid {}, state dir {})",
            __version__,
            _url(settings),
            os.getpid(),
            settings.state_dir,
        )
        uvicorn.Server(config).run(sockets=[sock])
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        if sock is not None:
            sock.close()
        _release_pid_file(settings, pid_fd)
        logger.info("cc-executor daemon on port {} stopped", settings.port)
    return 0


def loop_factory() -> asyncio.AbstractEventLoop:
    """uvicorn's event loop: the plain asyncio loop, with pidfd child watching on Python 3.11.

    3.11's default ``ThreadedChildWatcher`` starts one thread per child, blocked in ``waitpid``
    (and ``Thread.start`` waits until that thread runs): with 200 children at once that is 200
    threads contending for two cores. ``PidfdChildWatcher`` (the default from 3.12 on) waits on a
    pidfd in the loop's selector instead. It must be attached to the loop it serves, which is why
    it is installed here, where the daemon's loop is created, and not globally.
    """
    loop = asyncio.SelectorEventLoop()
    if sys.version_info < (3, 12) and hasattr(os, "pidfd_open"):
        try:
            os.close(os.pidfd_open(os.getpid()))
        except OSError:  # kernel without pidfds (< 5.3): keep the threaded watcher
            return loop
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            watcher = asyncio.PidfdChildWatcher()
            watcher.attach_loop(loop)
            asyncio.set_child_watcher(watcher)
    return loop


def _stdlib_level(level: str) -> int:
    """The stdlib level for a loguru level name (loguru-only names such as SUCCESS map to INFO)."""
    if level.upper() == "TRACE":
        return TRACE_LEVEL
    value = logging.getLevelName(level.upper())
    return value if isinstance(value, int) else logging.INFO


# --- background ---------------------------------------------------------------------------------
def _env_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as a ``CC_EXECUTOR_*`` variable, so a child daemon sees the same values.

    The token, when one is configured, travels here (environment, never argv).
    """
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is not None:
            env[f"CC_EXECUTOR_{name.upper()}"] = _env_value(value)
    return env


def health(settings: Settings, timeout: float = HEALTH_TIMEOUT_S) -> dict[str, Any] | None:
    """``GET /health`` of the daemon at ``settings``' address, or ``None`` if none answers."""
    conn = http.client.HTTPConnection(probe_host(settings.host), settings.port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        if response.status != http.client.OK:
            return None
        body = json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()
    return body if isinstance(body, dict) and body.get("status") == "ok" else None


def _log_tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


def start_background(settings: Settings, timeout: float = DAEMON_READY_TIMEOUT_S) -> int:
    """Start ``cc-executor server start --foreground`` detached; return its pid once ready.

    Ready means: the process holds the pid file and ``/health`` answers. Raises
    :class:`DaemonAlreadyRunning` or :class:`DaemonStartFailed` (with the log's tail).
    """
    pid = running_pid(settings)
    if pid is not None:
        raise _already_running(settings, pid)
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=_STATE_DIR_MODE)
    env = {**os.environ, **settings_env(settings)}
    argv = [sys.executable, "-m", "cc_executor", "server", "start", "--foreground"]
    with settings.log_file.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    _STARTED[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            _STARTED.pop(proc.pid, None)
            raise DaemonStartFailed(
                f"the daemon exited with code {code} while starting; "
                f"log {settings.log_file}:\n{_log_tail(settings.log_file)}",
                exit_code=code,
            )
        if running_pid(settings) == proc.pid and health(settings) is not None:
            return proc.pid
        time.sleep(READY_POLL_S)
    _terminate(proc.pid, KILL_WAIT_S)
    raise DaemonStartFailed(
        f"the daemon did not become ready within {timeout}s; "
        f"log {settings.log_file}:\n{_log_tail(settings.log_file)}"
    )


def _wait_exit(pid: int, timeout: float) -> bool:
    """Wait (bounded) until ``pid`` is gone, reaping it when it is our child."""
    import psutil

    proc = _STARTED.get(pid)
    if proc is not None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        _STARTED.pop(pid, None)
        return True
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM, wait ``timeout``, then SIGKILL; returns whether it exited on SIGTERM."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _wait_exit(pid, 0)
        return True
    if _wait_exit(pid, timeout):
        return True
    logger.warning("daemon pid {} ignored SIGTERM for {}s; sending SIGKILL", pid, timeout)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_exit(pid, KILL_WAIT_S)
    return False


def stop(settings: Settings, timeout: float = DAEMON_STOP_TIMEOUT_S) -> int | None:
    """Stop the daemon of this state dir and port; returns its pid, or ``None`` if none ran."""
    pid = running_pid(settings)
    if pid is None:
        return None
    if not _terminate(pid, timeout):
        # Killed: it could not remove its pid file itself.
        with contextlib.suppress(FileNotFoundError):
            settings.pid_file.unlink()
    return pid


def started_lines(settings: Settings, pid: int) -> list[str]:
    """What ``server start`` prints once the daemon answers (plain text, one line each)."""
    if not settings.auth_required:
        auth = "auth is off (CC_EXECUTOR_AUTH_REQUIRED=false)"
    elif settings.token is not None:
        auth = "token from CC_EXECUTOR_TOKEN"
    else:
        auth = f"token file {settings.token_file} (`cc-executor server token` prints it)"
    return [
        f"cc-executor daemon started (pid {pid})",
        f"  url:   {_url(settings)}",
        f"  auth:  {auth}",
        f"  log:   {settings.log_file}",
    ]


def status(settings: Settings) -> dict[str, Any]:
    """``{running, pid, url, version, ...}`` of the daemon of this state dir and port."""
    pid = running_pid(settings)
    answer = health(settings)
    return {
        "running": pid is not None or answer is not None,
        "pid": pid,
        "url": _url(settings),
        "version": answer.get("version") if answer else None,
        "healthy": answer is not None,
        "running_executions": answer.get("running_executions") if answer else None,
        "state_dir": str(settings.state_dir),
        "token_file": str(settings.token_file),
        "log_file": str(settings.log_file),
    }
