"""What a dead daemon left: finding and killing an execution's leftover processes by marker.

Owns: crash recovery's process side — killing what carries an execution's marker (and its
recorded group, only when a member carries the marker), and telling whether a pid still runs.
Does not own: deciding which executions are dead (``scheduler/service.py``), or the sweep
itself (``sweep.py``).
"""

from __future__ import annotations

import asyncio
import os

import psutil

from cc_executor.supervisor.procfs import find_marked_processes
from cc_executor.supervisor.sweep import sweep

__all__ = ["kill_leftovers", "pid_alive"]


def _group_members(pgid: int) -> list[psutil.Process]:
    """Live processes whose process group is ``pgid``."""
    members: list[psutil.Process] = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid:
                members.append(psutil.Process(pid))
        except (ProcessLookupError, psutil.NoSuchProcess):  # gone meanwhile
            continue
    return members


async def kill_leftovers(marker: str, pgid: int | None) -> int:
    """Kill whatever a dead daemon left of one execution; returns how many processes were killed.

    A process is the execution's only when it carries ``MARKER_ENV=marker``. The recorded group
    is killed as a whole (members that cleared their environment included) only when one of its
    members carries the marker: the kernel never hands out a pid that is still some group's id,
    so a live group with a marked member is the execution's own. A stranger that reused the pid
    or the pgid carries no marker and is never touched.
    """
    extra: list[psutil.Process] = []
    if pgid is not None and pgid > 1:
        members = await asyncio.to_thread(_group_members, pgid)
        marked = {proc.pid for proc in await asyncio.to_thread(find_marked_processes, marker)}
        if any(member.pid in marked for member in members):
            extra = members
    return await sweep(marker, extra=extra)


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (a zombie counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
