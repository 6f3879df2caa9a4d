"""Overhead of cc-executor on a real Claude CLI turn, against the fake Messages API.

Runs the pinned CLI (``scripts/install-claude.sh``) offline against ``tests/e2e/fake_anthropic``
on loopback, interleaving round by round:

- direct: ``asyncio.create_subprocess_exec`` of the same argv the adapter builds, same env,
  both pipes read to EOF;
- daemon: ``execute {agent: "claude", prompt}`` on a real daemon, until ``process.completed``.

Prints the median wall time of each, the overhead as a share of the direct wall time (target
<= 2 %), and the daemon memory added per running agent (RSS while N agents run at once, minus
idle, over N; the CLI processes themselves are not the daemon's memory).

    python -m bench.claude_turn --rounds 15 --agents 8      # from the repository root
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.bench import Daemon, Session
from loguru import logger
from tests.e2e.claude_env import claude_path, offline_env
from tests.e2e.fake_anthropic import FakeAnthropic

from cc_executor.agents.claude import ClaudeOptions, build_argv, child_env

PROMPT = "What is 2+2?"
OPTIONS = {"dangerously_skip_permissions": True}


async def direct_turn(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"direct claude run exited {proc.returncode}")
    return time.perf_counter() - t0


async def daemon_turn(session: Session) -> float:
    t0 = time.perf_counter()
    started = await session.call(
        "execute", {"agent": "claude", "prompt": PROMPT, "agent_options": OPTIONS}
    )
    _, completed = await session.drain(started["execution_id"])
    if completed["status"] != "completed":
        raise RuntimeError(f"daemon claude run ended {completed}")
    return time.perf_counter() - t0


async def memory_per_agent(daemon: Daemon, session: Session, n: int) -> float:
    idle = daemon.rss()
    # Agents that stay alive: the fake answers, then each CLI exits; to hold N agents at once we
    # measure the peak while N turns run concurrently.
    peak = idle
    runs = [
        await session.call(
            "execute", {"agent": "claude", "prompt": PROMPT, "agent_options": OPTIONS}
        )
        for _ in range(n)
    ]
    waits = [asyncio.ensure_future(session.drain(r["execution_id"])) for r in runs]
    while not all(w.done() for w in waits):
        peak = max(peak, daemon.rss())
        await asyncio.sleep(0.005)
    await asyncio.gather(*waits)
    return (peak - idle) / n


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--agents", type=int, default=8)
    args = parser.parse_args()
    logger.remove()  # the fake API logs every request at DEBUG
    logger.add(sys.stderr, level="WARNING")
    path = claude_path()
    if path is None:
        raise SystemExit("no Claude CLI: run scripts/install-claude.sh first")

    with tempfile.TemporaryDirectory() as tmp, FakeAnthropic() as api:
        home = Path(tmp) / "home"
        home.mkdir()
        env = child_env(offline_env(api.base_url, home), execution_id="bench-direct")
        argv = build_argv(PROMPT, ClaudeOptions(**OPTIONS), claude_path=path)
        daemon = Daemon(
            Path(tmp) / "state",
            extra_env={**offline_env(api.base_url, home), "CC_EXECUTOR_CLAUDE_PATH": path},
        )
        try:
            session = await daemon.connect()
            await direct_turn(argv, env)  # warm both paths (page cache, CLI first start)
            await daemon_turn(session)
            direct: list[float] = []
            through: list[float] = []
            for i in range(args.rounds):
                pair = [direct_turn(argv, env), daemon_turn(session)]
                if i % 2:
                    pair.reverse()
                first = await pair[0]
                second = await pair[1]
                d, x = (second, first) if i % 2 else (first, second)
                direct.append(d)
                through.append(x)
            per_agent = await memory_per_agent(daemon, session, args.agents)
            await session.close()
        finally:
            daemon.stop()
    d_med, x_med = statistics.median(direct), statistics.median(through)
    overhead = (x_med - d_med) / d_med * 100
    print(f"claude turn, direct   median {d_med * 1000:8.1f} ms  ({args.rounds} rounds)")
    print(f"claude turn, daemon   median {x_med * 1000:8.1f} ms")
    print(f"overhead              {overhead:+8.2f} % of the direct wall time   target <= 2 %")
    print(f"daemon memory per running agent {per_agent / 1024:8.1f} KB ({args.agents} at once)")


if __name__ == "__main__":
    asyncio.run(main())
