"""Python hooks: discovery (hook files and entry points) and calling them without blocking the loop.

Owns: reading ``HOOKS`` mappings (``{event name: callable | [callables]}``) out of every
``*.py`` file of the hooks directory (each loaded by its path, never through ``sys.path``) and
out of the entry points of group ``cc_executor.hooks``; turning each callable into a
:class:`~cc_executor.scheduler.hooks.model.HookSpec`; and the invoker that calls a sync hook in
a daemon thread (so a hook stuck in a blocking call neither blocks the event loop nor keeps the
interpreter from exiting) and an async hook on the loop. A file or entry point that fails to
load becomes a :class:`LoadError`; it never raises. Does not own: timeouts or aggregation
(``runner``), command hooks (``command_hooks``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from loguru import logger

from cc_executor.scheduler.hooks.model import (
    DeclaredHook,
    HookCallable,
    HookContext,
    HookEvent,
    HookInvoker,
    HookKind,
    HookResult,
    HookSpec,
    coerce_result,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "HOOKS_ATTRIBUTE",
    "LoadError",
    "Loaded",
    "builtin_spec",
    "hooks_from_mapping",
    "load_entry_points",
    "load_hook_files",
    "python_invoker",
]

ENTRY_POINT_GROUP = "cc_executor.hooks"
HOOKS_ATTRIBUTE = "HOOKS"  # the module-level mapping a hook file or entry point provides
_MODULE_PREFIX = "_cc_executor_hook_file_"  # sys.modules name of a loaded hook file
_SKIPPED_PREFIXES = ("_", ".")  # such files in the hooks dir are not hook files


@dataclass(frozen=True, slots=True)
class LoadError:
    """A hook file, entry point or ``hooks.json`` entry that could not be loaded."""

    source: str
    error: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "error": self.error}


@dataclass(slots=True)
class Loaded:
    """What one discovery step found: hooks in registration order, and what failed."""

    hooks: list[HookSpec] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)

    def extend(self, other: Loaded) -> None:
        self.hooks.extend(other.hooks)
        self.errors.extend(other.errors)


# --- calling -------------------------------------------------------------------------------------


def _is_async(func: object) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 (an object with an async __call__)
    )


def _settle(future: asyncio.Future[object], value: object, error: BaseException | None) -> None:
    if future.done():  # the caller timed out or was cancelled; nobody wants the answer
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


async def _call_in_thread(func: HookCallable, ctx: HookContext, name: str) -> object:
    """``func(ctx)`` in a daemon thread. A thread cannot be killed: a sync hook that hangs keeps
    its thread until it returns, but neither the loop nor the interpreter's exit waits for it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[object] = loop.create_future()

    def target() -> None:
        value: object = None
        error: BaseException | None = None
        try:
            value = func(ctx)
        except BaseException as exc:  # handed to the awaiting task, which reports it
            error = exc
        try:
            loop.call_soon_threadsafe(_settle, future, value, error)
        except RuntimeError:  # the loop closed while the hook ran
            logger.debug("hook {} finished after its event loop closed", name)

    threading.Thread(target=target, name=f"hook:{name}", daemon=True).start()
    return await future


def python_invoker(func: HookCallable, name: str) -> HookInvoker:
    """The runner's way to call ``func``: async on the loop, sync in a daemon thread."""
    run_on_loop = _is_async(func)

    async def invoke(ctx: HookContext) -> HookResult:
        value = func(ctx) if run_on_loop else await _call_in_thread(func, ctx, name)
        if inspect.isawaitable(value):  # e.g. a sync wrapper that returns a coroutine
            value = await value
        return coerce_result(value)

    return invoke


# --- discovery -----------------------------------------------------------------------------------


def _events_of(
    mapping: Mapping[object, object], source: str, loaded: Loaded
) -> list[tuple[HookEvent, list[object]]]:
    pairs: list[tuple[HookEvent, list[object]]] = []
    for key, value in mapping.items():
        try:
            event = HookEvent(str(key))
        except ValueError:
            known = ", ".join(e.value for e in HookEvent)
            loaded.errors.append(LoadError(source, f"unknown event {key!r} (known: {known})"))
            continue
        items = list(value) if isinstance(value, list | tuple) else [value]
        pairs.append((event, items))
    return pairs


def hooks_from_mapping(
    mapping: object, *, source: str, prefix: str, kind: HookKind = "python"
) -> Loaded:
    """Hooks of one ``HOOKS`` mapping, named ``<prefix>.<function name>``.

    The same callable listed under several events is one hook with several events.
    """
    loaded = Loaded()
    if not isinstance(mapping, Mapping):
        loaded.errors.append(
            LoadError(source, f"{HOOKS_ATTRIBUTE} is a {type(mapping).__name__}, not a mapping")
        )
        return loaded
    by_identity: dict[int, tuple[object, list[HookEvent]]] = {}
    for event, items in _events_of(mapping, source, loaded):
        for item in items:
            if not callable(item):
                loaded.errors.append(LoadError(source, f"{event}: {item!r} is not callable"))
                continue
            entry = by_identity.setdefault(id(item), (item, []))
            if event not in entry[1]:
                entry[1].append(event)
    names: set[str] = set()
    for item, events in by_identity.values():
        declared = item if isinstance(item, DeclaredHook) else None
        func: HookCallable = declared.func if declared else item  # type: ignore[assignment]
        base = (declared.name if declared else None) or getattr(
            func, "__name__", type(func).__name__
        )
        name = f"{prefix}.{base}"
        suffix = 2
        while name in names:  # two lambdas, or two objects of one class
            name = f"{prefix}.{base}#{suffix}"
            suffix += 1
        names.add(name)
        loaded.hooks.append(
            HookSpec(
                name=name,
                kind=kind,
                events=tuple(events),
                invoke=python_invoker(func, name),
                required=declared.required if declared else False,
                timeout_s=declared.timeout_s if declared else None,
                source=source,
            )
        )
    return loaded


def _load_file(path: Path) -> object:
    """Execute ``path`` as a module (by its path) and return its ``HOOKS``."""
    module_name = _MODULE_PREFIX + path.stem
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered while it executes: dataclasses and typing look their module up by name.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    if not hasattr(module, HOOKS_ATTRIBUTE):
        raise LookupError(f"defines no module-level {HOOKS_ATTRIBUTE} mapping")
    return getattr(module, HOOKS_ATTRIBUTE)


def _describe(exc: BaseException, path: Path | None = None) -> str:
    """``Type: message``, plus where in ``path`` it was raised (the traceback is logged)."""
    text = f"{type(exc).__name__}: {exc}"
    if path is not None and not isinstance(exc, SyntaxError):  # SyntaxError names its line
        lines = [
            f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)
        ]
        if lines:
            text += f" (line {lines[-1]})"
    return text


def load_hook_files(directory: Path) -> Loaded:
    """Every ``*.py`` file of ``directory`` (alphabetical; ``_*`` and ``.*`` skipped)."""
    loaded = Loaded()
    if not directory.is_dir():
        return loaded
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith(_SKIPPED_PREFIXES) or not path.is_file():
            continue
        try:
            mapping = _load_file(path)
        except (Exception, SystemExit) as exc:  # a broken hook file must not stop the daemon
            error = _describe(exc, path)
            logger.warning("hook file {} failed to load: {}", path, error)
            logger.opt(exception=exc).debug("hook file {} traceback", path)
            loaded.errors.append(LoadError(str(path), error))
            continue
        loaded.extend(hooks_from_mapping(mapping, source=str(path), prefix=path.stem))
    return loaded


def load_entry_points(group: str = ENTRY_POINT_GROUP) -> Loaded:
    """Every entry point of ``group`` (by name); each must load to a ``HOOKS``-style mapping."""
    loaded = Loaded()
    for point in sorted(entry_points(group=group), key=lambda p: p.name):
        source = f"entry point {point.name} = {point.value}"
        try:
            mapping = point.load()
        except (Exception, SystemExit) as exc:  # a broken plugin must not stop the daemon
            logger.warning("hook {} failed to load: {}", source, _describe(exc))
            logger.opt(exception=exc).debug("hook {} traceback", source)
            loaded.errors.append(LoadError(source, _describe(exc)))
            continue
        loaded.extend(hooks_from_mapping(mapping, source=source, prefix=point.name))
    return loaded


def builtin_spec(
    name: str,
    func: Callable[[HookContext], object],
    events: tuple[HookEvent, ...],
    *,
    agents: tuple[str, ...] | None = None,
) -> HookSpec:
    """A hook that ships with cc-executor (kind ``builtin``), for ``agents`` only if given."""
    return HookSpec(
        name=name,
        kind="builtin",
        events=events,
        invoke=python_invoker(func, name),
        source="builtin",
        agents=agents,
    )
