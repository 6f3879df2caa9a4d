"""What the tests check processes with: psutil, independently of the supervisor's own /proc scan."""

from __future__ import annotations

import psutil

MARKER_ENV = "CC_EXECUTOR_EXECUTION_ID"


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The ones still running (zombies count as gone: they run nothing and hold no pipe)."""
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            continue
    return out


def marked_alive(execution_id: str) -> list[psutil.Process]:
    """Live processes whose environment carries the execution's marker."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER_ENV) == execution_id:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return alive(found)
