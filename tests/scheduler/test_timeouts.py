"""TimeoutPredictor: the class table, p90 x factor, defaults, floor/ceiling, load, learning."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cc_executor.config import Settings
from cc_executor.errors import ServiceError
from cc_executor.protocol import ExecuteParams
from cc_executor.scheduler.timeouts import (
    DEFAULT_TIMEOUT_S,
    MIN_SAMPLES,
    SystemLoad,
    TimeoutPredictor,
    complexity_of,
    load_multiplier,
    percentile,
)
from cc_executor.storage import DurationSample, ExecutionRecord, SqliteStore

IDLE = SystemLoad(load_per_core=0.2, memory_percent=40.0)
LONG_PROMPT = "Explain the difference between these two sentences. " * 30  # > 1000 chars


def idle() -> SystemLoad:
    return IDLE


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "state" / "cc-executor.db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def agent(prompt: str) -> ExecuteParams:
    return ExecuteParams(agent="claude", prompt=prompt)


def shell(command: str) -> ExecuteParams:
    return ExecuteParams(command=command)


async def seed(store: SqliteStore, category: str, durations: Sequence[float]) -> None:
    for index, duration in enumerate(durations):
        await store.add_duration(DurationSample(category, duration, recorded_at=1000.0 + index))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (agent("What is 2+2?"), "claude:question:low"),
        (agent("Write a Python function that reverses a string"), "claude:code:low"),
        (agent("Research and compare three message queues"), "claude:research:low"),
        (agent("Review this function and fix the bug"), "claude:code:low"),  # 3 code words vs 1
        (agent("Summarize and review the release notes"), "claude:research:low"),
        (agent("Refactor the entire module"), "claude:code:medium"),  # heavy word raises a level
        (agent("Implement it. " + "x" * 300), "claude:code:medium"),
        (agent(LONG_PROMPT), "claude:question:high"),
        (agent("Thorough review of everything. " + "y" * 1200), "claude:research:high"),
        (ExecuteParams(agent="codex", prompt="fix the test"), "codex:code:low"),
        (shell("pytest -q tests"), "shell:test:low"),
        (shell("/usr/bin/make test"), "shell:test:low"),
        (shell("python3 -m pytest -x"), "shell:test:low"),
        (shell("cargo build --release && cargo test"), "shell:test:medium"),
        (shell("npm install && npm run build"), "shell:build:medium"),
        (shell("make -j4"), "shell:build:low"),
        (shell("python -m pip install -e ."), "shell:build:low"),
        (shell("ls -la | grep foo"), "shell:other:medium"),
        (shell("a; b; c && d"), "shell:other:high"),
        (shell("echo 'unbalanced"), "shell:other:low"),
        (ExecuteParams(argv=["go", "test", "./..."]), "shell:test:low"),
        (ExecuteParams(argv=["echo", "&&", "pytest"]), "shell:test:medium"),
    ],
)
def test_classification_table(params: ExecuteParams, expected: str, tmp_path: Path) -> None:
    predictor = TimeoutPredictor(SqliteStore(tmp_path / "unused.db"), load=idle)
    assert predictor.classify(params) == expected
    assert predictor.classify(params) == expected  # deterministic


def test_percentile_and_complexity() -> None:
    assert percentile([float(n) for n in range(1, 11)]) == 9.0  # nearest rank: ceil(0.9*10)=9th
    assert percentile([5.0]) == 5.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    with pytest.raises(ValueError, match="no values"):
        percentile([])
    assert complexity_of("claude:code:high") == "high"
    assert complexity_of("strange") == "medium"


@pytest.mark.parametrize(
    ("load", "multiplier"),
    [
        (SystemLoad(0.5, 50.0), 1.0),
        (SystemLoad(1.0, 80.0), 1.0),  # exactly saturated, memory at the threshold: no raise
        (SystemLoad(1.5, 50.0), 1.25),
        (SystemLoad(5.0, 50.0), 1.5),  # CPU part is capped
        (SystemLoad(0.1, 90.0), 1.125),
        (SystemLoad(3.0, 100.0), 1.75),  # the most it ever raises
    ],
)
def test_load_multiplier(load: SystemLoad, multiplier: float) -> None:
    assert load_multiplier(load) == pytest.approx(multiplier)


async def test_p90_times_factor(store: SqliteStore) -> None:
    await seed(store, "claude:code:low", [10.0 * n for n in range(1, 11)])  # 10..100 s
    predictor = TimeoutPredictor(store, factor=1.5, floor_s=1, ceiling_s=10_000, load=idle)
    assert await predictor.predict("claude:code:low", agent("fix it")) == pytest.approx(135.0)
    predictor.factor = 2.0
    assert await predictor.predict("claude:code:low", agent("fix it")) == pytest.approx(180.0)


async def test_too_few_samples_use_the_complexity_default(store: SqliteStore) -> None:
    await seed(store, "claude:code:high", [5.0] * (MIN_SAMPLES - 1))
    predictor = TimeoutPredictor(store, floor_s=1, ceiling_s=10_000, load=idle)
    assert await predictor.predict("claude:code:high", agent("x")) == DEFAULT_TIMEOUT_S["high"]
    assert await predictor.predict("claude:new:low", agent("x")) == DEFAULT_TIMEOUT_S["low"]
    await seed(store, "claude:code:high", [5.0])  # the fifth sample switches to learning
    assert await predictor.predict("claude:code:high", agent("x")) == pytest.approx(7.5)


async def test_floor_and_ceiling_clamp(store: SqliteStore) -> None:
    await seed(store, "fast", [1.0] * 10)
    await seed(store, "slow", [5000.0] * 10)
    predictor = TimeoutPredictor(store, floor_s=60, ceiling_s=3600, load=idle)
    assert await predictor.predict("fast", agent("x")) == 60.0
    assert await predictor.predict("slow", agent("x")) == 3600.0
    with pytest.raises(ValueError, match="floor_s"):
        TimeoutPredictor(store, floor_s=100, ceiling_s=10)
    with pytest.raises(ValueError, match="factor"):
        TimeoutPredictor(store, factor=0.5)


async def test_load_raises_the_prediction(store: SqliteStore) -> None:
    await seed(store, "claude:code:low", [100.0] * 10)
    busy = SystemLoad(load_per_core=2.0, memory_percent=90.0)  # x (1 + 0.5 + 0.125)
    predictor = TimeoutPredictor(store, factor=1.5, floor_s=1, ceiling_s=10_000, load=lambda: busy)
    assert await predictor.predict("claude:code:low", agent("x")) == pytest.approx(243.75)
    predictor.ceiling_s = 200.0  # the clamp comes after the load
    assert await predictor.predict("claude:code:low", agent("x")) == 200.0


async def test_default_load_reads_this_machine(store: SqliteStore) -> None:
    predictor = TimeoutPredictor(store, floor_s=1, ceiling_s=100_000)
    predicted = await predictor.predict("claude:question:low", agent("hi"))
    assert predicted is not None
    assert DEFAULT_TIMEOUT_S["low"] <= predicted <= DEFAULT_TIMEOUT_S["low"] * 1.75


async def test_applies_to(store: SqliteStore) -> None:
    command, prompt = shell("make"), agent("hi")
    off = TimeoutPredictor(store, applies_to="off", load=idle)
    agents = TimeoutPredictor(store, applies_to="agents", load=idle)
    everything = TimeoutPredictor(store, applies_to="all", load=idle)
    assert await off.predict(off.classify(prompt), prompt) is None
    assert await agents.predict(agents.classify(command), command) is None
    assert await agents.predict(agents.classify(prompt), prompt) == DEFAULT_TIMEOUT_S["low"]
    assert await everything.predict("shell:build:low", command) == DEFAULT_TIMEOUT_S["low"]


def finished(execution_id: str, state: str, took: float | None, **fields: Any) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=execution_id,
        state=state,
        command="claude -p",
        agent="claude",
        created_at=time.time(),
        ended_at=2000.0,
        execution_time=took,
        **fields,
    )


async def test_observe_learns_completed_and_timed_out_runs(store: SqliteStore) -> None:
    predictor = TimeoutPredictor(store, floor_s=1, ceiling_s=10_000, load=idle)
    category = "claude:code:low"
    await predictor.observe(finished("a", "completed", 12.0, category=category))
    await predictor.observe(
        finished("b", "timeout", 90.0, category=category, timeout=90.0, timeout_predicted=True)
    )
    await predictor.observe(finished("c", "failed", 1.0, category=category))
    await predictor.observe(finished("d", "canceled", 1.0, category=category))
    await predictor.observe(finished("e", "completed", 5.0))  # no class: nothing to learn
    await predictor.observe(finished("f", "completed", None, category=category))
    samples = await store.durations(category)
    assert [(s.execution_id, s.state, s.duration_s) for s in samples] == [
        ("b", "timeout", 90.0),
        ("a", "completed", 12.0),
    ]
    assert samples[0].predicted_timeout_s == 90.0
    assert samples[1].predicted_timeout_s is None
    assert samples[0].recorded_at == 2000.0
    assert await store.durations() == samples


async def test_observed_runs_feed_the_next_prediction(store: SqliteStore) -> None:
    predictor = TimeoutPredictor(store, factor=2.0, floor_s=1, ceiling_s=10_000, load=idle)
    params = agent("Write a function")
    category = predictor.classify(params)
    for index in range(MIN_SAMPLES):
        await predictor.observe(finished(f"r{index}", "completed", 40.0, category=category))
    assert await predictor.predict(category, params) == pytest.approx(80.0)


class BrokenStore:
    """A store whose statistics calls fail the way an unreachable backend does."""

    async def durations(self, category: str | None = None, *, limit: int = 200) -> list[Any]:
        raise ServiceError("store down")

    async def add_duration(self, sample: DurationSample) -> None:
        raise ServiceError("store down")


async def test_a_failing_store_falls_back_and_never_raises() -> None:
    predictor = TimeoutPredictor(BrokenStore(), load=idle)  # type: ignore[arg-type]
    assert await predictor.predict("claude:code:medium", agent("x")) == DEFAULT_TIMEOUT_S["medium"]
    await predictor.observe(finished("x", "completed", 3.0, category="claude:code:medium"))


def test_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path,
        timeout_prediction="all",
        timeout_safety_factor=2.5,
        timeout_floor_s=30,
        timeout_ceiling_s=900,
    )
    store = SqliteStore(settings.store_path)
    predictor = TimeoutPredictor.from_settings(settings, store)
    assert (predictor.applies_to, predictor.factor) == ("all", 2.5)
    assert (predictor.floor_s, predictor.ceiling_s) == (30.0, 900.0)
    assert predictor.store is store
    defaults = TimeoutPredictor.from_settings(Settings(state_dir=tmp_path), store)
    assert (defaults.applies_to, defaults.factor) == ("agents", 1.5)
    assert (defaults.floor_s, defaults.ceiling_s) == (60.0, 3600.0)


async def test_with_the_service_a_finished_run_is_classified_and_learned(tmp_path: Path) -> None:
    """The wiring create_app uses: the service classifies, predicts, and reports back."""
    from cc_executor.scheduler.service import ExecutionService
    from cc_executor.supervisor import Supervisor

    store = SqliteStore(tmp_path / "state" / "cc-executor.db")
    predictor = TimeoutPredictor(store, applies_to="all", floor_s=1, ceiling_s=10_000, load=idle)
    finished_ids: list[str] = []
    done = asyncio.Event()

    async def on_finished(execution: Any) -> None:
        finished_ids.append(execution.id)
        done.set()

    service = ExecutionService(
        supervisor=Supervisor(shell="/bin/sh"), store=store, timeouts=predictor
    )
    service.on_finished(on_finished)
    async with service:
        execution = await service.execute(ExecuteParams(command="true"))
        async with asyncio.timeout(30):
            await done.wait()
        record = await store.get_execution(execution.id)
        samples = await store.durations("shell:other:low")
    assert finished_ids == [execution.id]
    assert record is not None
    assert (record.category, record.timeout_predicted) == ("shell:other:low", True)
    assert record.timeout == DEFAULT_TIMEOUT_S["low"]
    assert [s.execution_id for s in samples] == [execution.id]
    assert samples[0].predicted_timeout_s == DEFAULT_TIMEOUT_S["low"]
