"""Timeout prediction: classify an ``execute`` request, predict its timeout, learn from results.

Owns: the execution classes (``classify``), the predicted wall-clock timeout of a request that
gave none (``predict``), and the duration samples finished executions leave behind
(``observe``). Does not own: applying the timeout (the supervisor kills the group), when
``predict`` is asked (``ExecutionService.execute``, only for requests without a ``timeout``), or
where samples live (the :class:`~cc_executor.storage.base.Store`).

**Classes** are ``"<kind>:<category>:<complexity>"``, e.g. ``claude:code:medium`` or
``shell:test:low``. ``kind`` is the agent name (``claude``) or ``shell`` for ``command``/``argv``.

* Agent prompts: the words of the prompt (lower case, ``[a-z0-9_]+``) are counted against
  :data:`AGENT_KEYWORDS`; the category with the most hits wins, ties go to the earlier one in
  ``code, research``; no hit at all is ``question``. Complexity comes from the prompt length
  (:data:`AGENT_LENGTH_BOUNDS`: under 200 characters ``low``, under 1000 ``medium``, else
  ``high``), raised one level when the prompt uses a word from :data:`HEAVY_WORDS`.
* Shell commands: the command is split into simple commands at ``&&``, ``||``, ``;`` and ``|``;
  ``test`` when any of them runs a test tool (:data:`TEST_PROGRAMS`, or ``<tool> test`` for the
  tools in :data:`SUBCOMMAND_TOOLS`, or ``python -m pytest|unittest``), else ``build`` when any
  runs a build tool (:data:`BUILD_PROGRAMS`, ``<tool> build|install``), else ``other``.
  Complexity is the number of simple commands: 1 ``low``, 2-3 ``medium``, 4+ ``high``.

**Formula** (``predict``)::

    base       = p90(recent durations of the class) * factor   when >= MIN_SAMPLES samples
               = DEFAULT_TIMEOUT_S[complexity]                  otherwise
    multiplier = 1 + CPU_LOAD_WEIGHT * min(max(load1 / cores - 1, 0), 1)
                   + MEMORY_WEIGHT * min(max((memory % - MEMORY_PRESSURE_START) / 20, 0), 1)
    timeout    = clamp(base * multiplier, floor_s, ceiling_s)

p90 is the nearest-rank percentile of the newest :data:`SAMPLE_WINDOW` samples. Timed-out runs
count with the time they were allowed, so a class that keeps timing out gets longer timeouts.

The default ``load`` reads psutil (the 1-minute load average and the memory in use). That is
the only place outside ``supervisor/`` that asks psutil anything; it reads machine-wide
figures, never processes.
"""

from __future__ import annotations

import math
import re
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import psutil
from loguru import logger

from cc_executor.errors import ServiceError
from cc_executor.protocol import ExecuteParams
from cc_executor.storage.base import DurationSample, ExecutionRecord, Store

if TYPE_CHECKING:
    from cc_executor.config import Settings

__all__ = [
    "AGENT_KEYWORDS",
    "AGENT_LENGTH_BOUNDS",
    "BUILD_PROGRAMS",
    "CPU_LOAD_WEIGHT",
    "DEFAULT_TIMEOUT_S",
    "HEAVY_WORDS",
    "LEARNED_STATES",
    "MEMORY_PRESSURE_START",
    "MEMORY_WEIGHT",
    "MIN_SAMPLES",
    "SAMPLE_WINDOW",
    "SUBCOMMAND_TOOLS",
    "TEST_PROGRAMS",
    "AppliesTo",
    "SystemLoad",
    "TimeoutPredictor",
    "complexity_of",
    "load_multiplier",
    "percentile",
    "system_load",
]

AppliesTo = Literal["off", "agents", "all"]
Complexity = Literal["low", "medium", "high"]
_LEVELS: tuple[Complexity, ...] = ("low", "medium", "high")

MIN_SAMPLES = 5  # below this a p90 is one outlier away from nonsense; use the default instead
SAMPLE_WINDOW = 50  # recent runs only: prompts, models and machines change over weeks
PERCENTILE = 90.0  # generous enough for the slow tail, not pulled up by the single worst run
# Base timeouts of a class with too few samples: a short question, an ordinary task, a big one.
DEFAULT_TIMEOUT_S: Mapping[Complexity, float] = {"low": 300.0, "medium": 900.0, "high": 1800.0}
CPU_LOAD_WEIGHT = 0.5  # a machine at twice its cores gets 50 % more time (runs queue for CPU)
MEMORY_WEIGHT = 0.25  # swapping slows everything, but less predictably than CPU contention
MEMORY_PRESSURE_START = 80.0  # percent of memory in use before it counts as pressure
MEMORY_PRESSURE_SPAN = 20.0  # 80 % -> no raise, 100 % -> the full MEMORY_WEIGHT
LEARNED_STATES = frozenset({"completed", "timeout"})  # failed/canceled runs say nothing of length

AGENT_LENGTH_BOUNDS = (200, 1000)  # prompt characters: below the first low, below the second medium


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


AGENT_KEYWORDS: Mapping[str, frozenset[str]] = {
    "code": _words(
        "implement implementation write create fix refactor function functions class classes "
        "module code script bug debug compile test tests unittest endpoint api build add "
        "rename migrate program"
    ),
    "research": _words(
        "research investigate analyze analyse analysis compare comparison review survey "
        "summarize summarise summary evaluate study explore report document sources"
    ),
}
HEAVY_WORDS = _words(
    "comprehensive entire whole thorough thoroughly architecture migrate migration multiple "
    "everything"
)

TEST_PROGRAMS = frozenset({"pytest", "tox", "nox", "jest", "vitest", "mocha", "ctest", "phpunit"})
BUILD_PROGRAMS = frozenset(
    {"make", "cmake", "ninja", "gcc", "g++", "clang", "clang++", "tsc", "webpack", "bazel", "meson"}
)
SUBCOMMAND_TOOLS = frozenset(
    {"npm", "yarn", "pnpm", "cargo", "go", "dotnet", "mvn", "gradle", "docker", "make", "uv", "pip"}
)
_TEST_SUBCOMMANDS = frozenset({"test", "tests"})
_BUILD_SUBCOMMANDS = frozenset({"build", "install", "compile", "package"})
_PYTHON_TEST_MODULES = frozenset({"pytest", "unittest"})
_SHELL_OPERATORS = frozenset({"&&", "||", ";", "|", "&"})
_WORD = re.compile(r"[a-z0-9_]+")
_SHELL_SEGMENTS_MEDIUM = 2
_SHELL_SEGMENTS_HIGH = 4


@dataclass(frozen=True, slots=True)
class SystemLoad:
    """Machine-wide load: 1-minute load average per core, and percent of memory in use."""

    load_per_core: float
    memory_percent: float


def system_load() -> SystemLoad:
    """The load now, from psutil (``/proc/loadavg`` and ``/proc/meminfo`` on Linux)."""
    cores = psutil.cpu_count() or 1
    return SystemLoad(psutil.getloadavg()[0] / cores, psutil.virtual_memory().percent)


def load_multiplier(load: SystemLoad) -> float:
    """How much longer things take now: 1.0 on an idle machine, at most 1.75 (see the module)."""
    cpu = min(max(load.load_per_core - 1.0, 0.0), 1.0)
    memory = min(
        max((load.memory_percent - MEMORY_PRESSURE_START) / MEMORY_PRESSURE_SPAN, 0.0), 1.0
    )
    return 1.0 + CPU_LOAD_WEIGHT * cpu + MEMORY_WEIGHT * memory


def percentile(values: Sequence[float], pct: float = PERCENTILE) -> float:
    """Nearest-rank percentile (a value that occurred, never an interpolation)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(math.ceil(pct / 100.0 * len(ordered)), 1)
    return ordered[rank - 1]


def complexity_of(category: str) -> Complexity:
    """The complexity part of a class name (``medium`` when the name has none we know)."""
    last = category.rsplit(":", 1)[-1]
    for level in _LEVELS:
        if last == level:
            return level
    return "medium"


def _raise_level(level: Complexity) -> Complexity:
    return _LEVELS[min(_LEVELS.index(level) + 1, len(_LEVELS) - 1)]


def _agent_class(agent: str, prompt: str) -> str:
    words = _WORD.findall(prompt.lower())
    scores = {
        name: sum(word in keywords for word in words) for name, keywords in AGENT_KEYWORDS.items()
    }
    best = max(scores.values(), default=0)
    category = next(name for name, score in scores.items() if score == best) if best else "question"
    short, long_ = AGENT_LENGTH_BOUNDS
    size = len(prompt)
    level: Complexity = "low" if size < short else "medium" if size < long_ else "high"
    if HEAVY_WORDS.intersection(words):
        level = _raise_level(level)
    return f"{agent}:{category}:{level}"


def _segments(tokens: Sequence[str]) -> list[list[str]]:
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token in _SHELL_OPERATORS:
            segments.append([])
        else:
            segments[-1].append(token)
    return [segment for segment in segments if segment]


def _segment_kind(segment: Sequence[str]) -> str:
    program = segment[0].rsplit("/", 1)[-1]
    rest = set(segment[1:3])
    module = segment[2] if program.startswith("python") and segment[1:2] == ["-m"] else None
    if module is not None:
        rest = {module}
    tool = program in SUBCOMMAND_TOOLS or module is not None
    if program in TEST_PROGRAMS or module in _PYTHON_TEST_MODULES:
        return "test"
    if tool and rest & _TEST_SUBCOMMANDS:
        return "test"
    if program in BUILD_PROGRAMS or (tool and rest & _BUILD_SUBCOMMANDS) or module == "pip":
        return "build"
    return "other"


def _shell_class(command: str | None, argv: Sequence[str] | None) -> str:
    if argv is not None:
        tokens = list(argv)
    else:
        text = command or ""
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:  # unbalanced quotes: classify the words we can see
            tokens = text.split()
    segments = _segments(tokens) or [[""]]
    kinds = {_segment_kind(segment) for segment in segments}
    category = "test" if "test" in kinds else "build" if "build" in kinds else "other"
    count = len(segments)
    level: Complexity = (
        "low"
        if count < _SHELL_SEGMENTS_MEDIUM
        else "medium"
        if count < _SHELL_SEGMENTS_HIGH
        else "high"
    )
    return f"shell:{category}:{level}"


class TimeoutPredictor:
    """The service's :class:`~cc_executor.scheduler.service.TimeoutPlanner`; see the module."""

    def __init__(
        self,
        store: Store,
        *,
        factor: float = 1.5,
        floor_s: float = 60.0,
        ceiling_s: float = 3600.0,
        applies_to: AppliesTo = "agents",
        load: Callable[[], SystemLoad] = system_load,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if factor < 1.0:
            raise ValueError(f"timeout safety factor must be >= 1, not {factor}")
        if not 0 < floor_s <= ceiling_s:
            raise ValueError(f"need 0 < floor_s <= ceiling_s, got {floor_s} and {ceiling_s}")
        self.store = store
        self.factor = factor
        self.floor_s = floor_s
        self.ceiling_s = ceiling_s
        self.applies_to: AppliesTo = applies_to
        self._load = load
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> TimeoutPredictor:
        return cls(
            store,
            factor=settings.timeout_safety_factor,
            floor_s=settings.timeout_floor_s,
            ceiling_s=settings.timeout_ceiling_s,
            applies_to=settings.timeout_prediction,
        )

    def classify(self, params: ExecuteParams) -> str:
        """The class of a request; pure and deterministic (see the module docstring)."""
        if params.agent is not None:
            return _agent_class(params.agent, params.prompt or "")
        return _shell_class(params.command, params.argv)

    def applies(self, params: ExecuteParams) -> bool:
        if self.applies_to == "off":
            return False
        return self.applies_to == "all" or params.agent is not None

    async def predict(self, category: str, params: ExecuteParams) -> float | None:
        """The timeout for a request of ``category``, or ``None`` when prediction is off for it."""
        if not self.applies(params):
            return None
        base = await self._base(category)
        timeout = base * load_multiplier(self._load())
        return min(max(timeout, self.floor_s), self.ceiling_s)

    async def _base(self, category: str) -> float:
        try:
            samples = await self.store.durations(category, limit=SAMPLE_WINDOW)
        except ServiceError as exc:  # a store hiccup must not refuse the execution
            logger.warning("timeout prediction: durations of {} unreadable: {}", category, exc)
            samples = []
        durations = [s.duration_s for s in samples if s.state in LEARNED_STATES]
        if len(durations) < MIN_SAMPLES:
            return DEFAULT_TIMEOUT_S[complexity_of(category)]
        return percentile(durations) * self.factor

    async def observe(self, record: ExecutionRecord) -> None:
        """Learn from a finished execution: completed and timed-out runs add a sample."""
        if (
            record.category is None
            or record.state not in LEARNED_STATES
            or record.execution_time is None
        ):
            return
        sample = DurationSample(
            category=record.category,
            duration_s=record.execution_time,
            recorded_at=record.ended_at if record.ended_at is not None else self._clock(),
            execution_id=record.execution_id,
            predicted_timeout_s=record.timeout if record.timeout_predicted else None,
            state=record.state,
        )
        try:
            await self.store.add_duration(sample)
        except ServiceError as exc:
            logger.warning(
                "timeout prediction: sample of {} not stored: {}", record.execution_id, exc
            )
