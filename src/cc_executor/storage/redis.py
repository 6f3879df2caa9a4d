"""The Redis store: the same contract as SQLite, shared by several daemons (scale-out).

Owns: the key layout under ``prefix``, the indexes that keep every query a range read (never a
``SCAN``), and the server round trips: pipelines without MULTI for batched reads and deletes, and
two Lua scripts, one for an upsert that moves a record between its indexes atomically and one that
appends up to a thousand events per call. Does not own the Redis server's persistence: what
survives a crash depends on ``appendonly``/``appendfsync`` (``docs/storage.md``).

Keys (``p`` = prefix)::

    p exec:<id>                hash, one JSON-encoded value per ExecutionRecord field
    p execs:all                zset id -> created_at (listing, paging, keep_last)
    p execs:state:<state>      zset id -> created_at (listing by state; recovery reads the
                               unfinished states only)
    p execs:list:<list_id>     zset id -> created_at (executions of one task list)
    p events:<id>              stream, entry id "<seq>-1", fields m (method) and f (frame)
    p event_bytes              hash id -> frame bytes stored (retention by size)
    p tasklist:<id>            hash, as for executions
    p tasklists:all            zset; p tasklists:state:<state> zsets
    p tasks:<list_id>          hash index -> TaskRecord JSON
    p hookruns:all, p hookruns:hook:<hook>            capped lists of JSON, newest first
    p durations:all, p durations:cat:<category>       capped lists of JSON, newest first

Writes of this process go through one FIFO lock, so they reach Redis in call order even though
the client's pool would otherwise spread concurrent calls over several connections. Events of one
execution must be appended in ``seq`` order (the event log numbers them so): a stream only grows,
so a seq below the newest stored one is treated as already stored.

Length: just past 500 lines, as one backend of the whole contract; the key layout above is only
readable if every method that touches it is in the same file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from cc_executor.errors import ServiceError
from cc_executor.storage._records import (
    DURATIONS,
    DURATIONS_KEPT_PER_CATEGORY,
    DURATIONS_KEPT_TOTAL,
    EXECUTIONS,
    HOOK_RUNS,
    HOOK_RUNS_KEPT,
    TASK_LISTS,
    TASKS,
    RecordShape,
    frame_bytes,
)
from cc_executor.storage.base import (
    FINISHED_EXECUTION_STATES,
    FINISHED_TASK_LIST_STATES,
    DurationSample,
    ExecutionRecord,
    HookRunRecord,
    PruneReport,
    StoredEvent,
    TaskListRecord,
    TaskRecord,
)

__all__ = ["RedisStore"]

PIPELINE_MAX_COMMANDS = 2_000  # bounds client memory and one round trip's reply parsing
# One append script call blocks Redis while it runs: about 1 ms per 1,000 small events or per
# 8 MiB of frames, so other clients (and other daemons) never wait long behind a big batch.
APPEND_MAX_EVENTS = 1_000
APPEND_MAX_BYTES = 8 * 1024 * 1024
STREAM_ID_SUFFIX = "-1"  # entry "<seq>-1": never "0-0" (invalid), and XADD refuses a re-append

# Append events to one stream and count their bytes, in one atomic call. A seq at or below the
# stream's newest entry is refused by XADD ("equal or smaller"): that is a re-append, skipped.
# A script instead of a pipeline of XADDs: redis-py spends ~20 us of Python per pipelined
# command, and a script call carries a thousand events as one command.
# KEYS[1] the stream, KEYS[2] the event-bytes hash. ARGV: execution id, then (id, method, frame)*.
_APPEND_LUA = """
local bytes = 0
for i = 2, #ARGV, 3 do
  local reply = redis.pcall('XADD', KEYS[1], ARGV[i], 'm', ARGV[i + 1], 'f', ARGV[i + 2])
  if type(reply) == 'table' and reply.err then
    if not string.find(reply.err, 'equal or smaller', 1, true) then
      if bytes > 0 then redis.call('HINCRBY', KEYS[2], ARGV[1], bytes) end
      return redis.error_reply(reply.err)
    end
  else
    bytes = bytes + #ARGV[i + 2]
  end
end
if bytes > 0 then redis.call('HINCRBY', KEYS[2], ARGV[1], bytes) end
return bytes
"""

# Upsert one record hash and move it between its sorted-set indexes, atomically.
# KEYS[1] the hash. ARGV: id, score, n, then n triples (hash field remembering the indexed value,
# index key prefix, new value or "" for none), then the record's field/value pairs.
_PUT_INDEXED_LUA = """
local id, score, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i = 0, n - 1 do
  local field, prefix, new = ARGV[4 + 3 * i], ARGV[5 + 3 * i], ARGV[6 + 3 * i]
  local old = redis.call('HGET', KEYS[1], field)
  if old and old ~= '' and old ~= new then redis.call('ZREM', prefix .. old, id) end
  if new ~= '' then redis.call('ZADD', prefix .. new, score, id) end
  redis.call('HSET', KEYS[1], field, new)
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4 + 3 * n))
return 1
"""

_IX_ALL, _IX_STATE, _IX_LIST = "_ix_all", "_ix_state", "_ix_list"


_CLAIM_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = redis.call('HGET', KEYS[1], 'owner')
if (current or 'null') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'updated_at', ARGV[3])
return 1
"""
"""Compare-and-set of a task list's owner (a missing field reads as JSON ``null``)."""


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _redact(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else value


def _seq_of(entry_id: str | bytes | None) -> int:
    return int(_text(entry_id).partition("-")[0])


def _merge_newest(
    ranges: Iterable[list[tuple[str, float]]], limit: int | None
) -> list[tuple[str, float]]:
    """Members of several newest-first zset ranges, newest first, ties by id descending."""
    merged = [item for r in ranges for item in r]
    merged.sort(key=lambda item: (item[1], item[0]), reverse=True)
    return merged if limit is None else merged[:limit]


class RedisStore:
    """:class:`~cc_executor.storage.base.Store` on Redis (``redis.asyncio``)."""

    def __init__(self, url: str, *, prefix: str = "cc-executor:") -> None:
        self.url = url
        self.prefix = prefix
        self._redis: aioredis.Redis | None = None
        self._put_script: Any = None
        self._append_script: Any = None
        self._write_lock = asyncio.Lock()

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._redis is not None:
            return
        client = aioredis.Redis.from_url(self.url, decode_responses=True)
        try:
            await client.ping()
            info = await client.info("persistence")
        except RedisError as exc:
            await client.aclose()
            raise ServiceError(f"cannot reach Redis: {exc}", url=_redact(self.url)) from exc
        if not int(info.get("aof_enabled", 0)):
            logger.warning(
                "Redis at {} runs without appendonly: a Redis restart loses writes since its"
                " last snapshot (see docs/storage.md)",
                _redact(self.url),
            )
        self._put_script = client.register_script(_PUT_INDEXED_LUA)
        self._append_script = client.register_script(_APPEND_LUA)
        self._redis = client

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            async with self._write_lock:  # let writes already queued finish first
                await client.aclose()

    @property
    def _r(self) -> aioredis.Redis:
        if self._redis is None:
            raise ServiceError("the store is not open", url=_redact(self.url))
        return self._redis

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def _put_indexed(
        self,
        hash_key: str,
        member: str,
        score: float,
        indexes: Sequence[tuple[str, str, str]],
        fields: dict[str, str],
    ) -> None:
        args: list[str | float | int] = [member, repr(float(score)), len(indexes)]
        for triple in indexes:
            args.extend(triple)
        for name, value in fields.items():
            args.extend((name, value))
        await self._put_script(keys=[hash_key], args=args, client=self._r)

    # --- executions --------------------------------------------------------------------------

    async def put_executions(self, records: Sequence[ExecutionRecord]) -> None:
        for record in records:  # each is one pipelined write already; in order
            await self.put_execution(record)

    async def put_execution(self, record: ExecutionRecord) -> None:
        eid = record.execution_id
        indexes = [
            (_IX_ALL, self._key("execs", ""), "all"),
            (_IX_STATE, self._key("execs", "state", ""), record.state),
            (_IX_LIST, self._key("execs", "list", ""), record.task_list_id or ""),
        ]
        async with self._write_lock:
            await self._put_indexed(
                self._key("exec", eid),
                eid,
                record.created_at,
                indexes,
                EXECUTIONS.to_fields(record),
            )

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        data = await self._r.hgetall(self._key("exec", execution_id))
        return EXECUTIONS.from_fields(data) if data else None

    async def _newest(
        self,
        index_keys: Sequence[str],
        *,
        limit: int | None,
        before: float | None,
        since: float | None,
    ) -> list[tuple[str, float]]:
        top = f"({before!r}" if before is not None else "+inf"
        bottom = repr(since) if since is not None else "-inf"
        pipe = self._r.pipeline(transaction=False)
        for key in index_keys:
            pipe.zrevrangebyscore(
                key, top, bottom, start=0, num=-1 if limit is None else limit, withscores=True
            )
        ranges: list[list[tuple[str, float]]] = await pipe.execute()
        return _merge_newest(ranges, limit)

    async def _load(self, shape: RecordShape[Any], keys: Sequence[str]) -> list[Any]:
        if not keys:
            return []
        pipe = self._r.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        # A record pruned between the index read and here is simply left out.
        return [shape.from_fields(data) for data in await pipe.execute() if data]

    async def list_executions(
        self,
        *,
        states: Sequence[str] | None = None,
        limit: int = 100,
        before: float | None = None,
        since: float | None = None,
        task_list_id: str | None = None,
    ) -> list[ExecutionRecord]:
        if limit <= 0 or (states is not None and not states):
            return []
        if task_list_id is not None:
            # A task list has a handful of executions: read its index whole, filter states here.
            members = await self._newest(
                [self._key("execs", "list", task_list_id)], limit=None, before=before, since=since
            )
            records: list[ExecutionRecord] = await self._load(
                EXECUTIONS, [self._key("exec", m) for m, _ in members]
            )
            wanted = None if states is None else set(states)
            return [r for r in records if wanted is None or r.state in wanted][:limit]
        if states is None:
            keys = [self._key("execs", "all")]
        else:
            keys = [self._key("execs", "state", s) for s in dict.fromkeys(states)]
        members = await self._newest(keys, limit=limit, before=before, since=since)
        return await self._load(EXECUTIONS, [self._key("exec", m) for m, _ in members])

    async def count_executions(self, *, states: Sequence[str] | None = None) -> int:
        if states is None:
            return int(await self._r.zcard(self._key("execs", "all")))
        pipe = self._r.pipeline(transaction=False)
        for state in dict.fromkeys(states):
            pipe.zcard(self._key("execs", "state", state))
        return sum(int(n) for n in await pipe.execute())

    # --- events ------------------------------------------------------------------------------

    async def append_events(self, events: Sequence[StoredEvent]) -> None:
        if not events:
            return
        by_execution: dict[str, list[StoredEvent]] = {}
        for event in events:
            by_execution.setdefault(event.execution_id, []).append(event)
        async with self._write_lock:
            for eid, batch in by_execution.items():
                chunk: list[str] = []
                chunk_bytes = 0
                for e in batch:
                    chunk.extend((f"{e.seq}{STREAM_ID_SUFFIX}", e.method, e.frame))
                    chunk_bytes += frame_bytes(e.frame)
                    if len(chunk) >= 3 * APPEND_MAX_EVENTS or chunk_bytes >= APPEND_MAX_BYTES:
                        await self._append_chunk(eid, chunk)
                        chunk, chunk_bytes = [], 0
                if chunk:
                    await self._append_chunk(eid, chunk)

    async def _append_chunk(self, execution_id: str, args: list[str]) -> None:
        keys = [self._key("events", execution_id), self._key("event_bytes")]
        await self._append_script(keys=keys, args=[execution_id, *args], client=self._r)

    async def read_events(
        self, execution_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[StoredEvent]:
        if limit <= 0:
            return []
        entries = await self._r.xrange(
            self._key("events", execution_id),
            min=f"{max(after_seq, 0) + 1}-0",
            max="+",
            count=limit,
        )
        return [
            StoredEvent(execution_id, _seq_of(entry_id), _text(fields["m"]), _text(fields["f"]))
            for entry_id, fields in entries or ()
            if fields is not None
        ]

    async def last_event_seq(self, execution_id: str) -> int:
        entries = await self._r.xrevrange(self._key("events", execution_id), count=1)
        return _seq_of(entries[0][0]) if entries else 0

    # --- task lists --------------------------------------------------------------------------

    async def put_task_list(self, record: TaskListRecord) -> None:
        lid = record.list_id
        indexes = [
            (_IX_ALL, self._key("tasklists", ""), "all"),
            (_IX_STATE, self._key("tasklists", "state", ""), record.state),
        ]
        async with self._write_lock:
            await self._put_indexed(
                self._key("tasklist", lid),
                lid,
                record.created_at,
                indexes,
                TASK_LISTS.to_fields(record),
            )

    async def claim_task_list(
        self, list_id: str, *, expected_owner: str | None, owner: str, at: float
    ) -> bool:
        # Fields hold JSON text, so the comparison is of encoded values; one script is atomic.
        async with self._write_lock:
            won = await self._r.eval(
                _CLAIM_LUA,
                1,
                self._key("tasklist", list_id),
                _json(expected_owner),
                _json(owner),
                _json(at),
            )
        return bool(won)

    async def get_task_list(self, list_id: str) -> TaskListRecord | None:
        data = await self._r.hgetall(self._key("tasklist", list_id))
        return TASK_LISTS.from_fields(data) if data else None

    async def list_task_lists(
        self, *, states: Sequence[str] | None = None, limit: int = 100
    ) -> list[TaskListRecord]:
        if limit <= 0 or (states is not None and not states):
            return []
        if states is None:
            keys = [self._key("tasklists", "all")]
        else:
            keys = [self._key("tasklists", "state", s) for s in dict.fromkeys(states)]
        members = await self._newest(keys, limit=limit, before=None, since=None)
        return await self._load(TASK_LISTS, [self._key("tasklist", m) for m, _ in members])

    async def put_task(self, record: TaskRecord) -> None:
        async with self._write_lock:
            await self._r.hset(
                self._key("tasks", record.list_id), str(record.index), TASKS.to_json(record)
            )

    async def get_tasks(self, list_id: str) -> list[TaskRecord]:
        data = await self._r.hgetall(self._key("tasks", list_id))
        return sorted((TASKS.from_json(v) for v in data.values()), key=lambda t: t.index)

    # --- hooks and statistics ----------------------------------------------------------------

    async def _push_capped(self, items: Sequence[tuple[str, int]], value: str) -> None:
        pipe = self._r.pipeline(transaction=False)
        for key, cap in items:
            pipe.lpush(key, value)
            pipe.ltrim(key, 0, cap - 1)
        async with self._write_lock:
            await pipe.execute()

    async def _newest_json(self, shape: RecordShape[Any], key: str, limit: int) -> list[Any]:
        if limit <= 0:
            return []
        return [shape.from_json(v) for v in await self._r.lrange(key, 0, limit - 1)]

    async def heartbeat(self, owner: str, at: float) -> None:
        await self._r.hset(self._key("owners"), owner, repr(at))

    async def owner_heartbeats(self) -> dict[str, float]:
        found = await self._r.hgetall(self._key("owners"))
        return {_text(owner): float(_text(at)) for owner, at in found.items()}

    async def forget_owner(self, owner: str) -> None:
        await self._r.hdel(self._key("owners"), owner)

    async def add_hook_run(self, record: HookRunRecord) -> None:
        await self._push_capped(
            [
                (self._key("hookruns", "all"), HOOK_RUNS_KEPT),
                (self._key("hookruns", "hook", record.hook), HOOK_RUNS_KEPT),
            ],
            HOOK_RUNS.to_json(record),
        )

    async def list_hook_runs(
        self, *, hook: str | None = None, limit: int = 50
    ) -> list[HookRunRecord]:
        key = self._key("hookruns", "all") if hook is None else self._key("hookruns", "hook", hook)
        return await self._newest_json(HOOK_RUNS, key, limit)

    async def add_duration(self, sample: DurationSample) -> None:
        await self._push_capped(
            [
                (self._key("durations", "all"), DURATIONS_KEPT_TOTAL),
                (self._key("durations", "cat", sample.category), DURATIONS_KEPT_PER_CATEGORY),
            ],
            DURATIONS.to_json(sample),
        )

    async def durations(
        self, category: str | None = None, *, limit: int = 200
    ) -> list[DurationSample]:
        key = (
            self._key("durations", "all")
            if category is None
            else self._key("durations", "cat", category)
        )
        return await self._newest_json(DURATIONS, key, limit)

    # --- retention ---------------------------------------------------------------------------

    async def _finished(self, kind: str, states: Iterable[str]) -> list[tuple[str, float]]:
        """Every finished member of one record kind with its created_at, oldest first."""
        pipe = self._r.pipeline(transaction=False)
        for state in sorted(states):
            pipe.zrange(self._key(kind, "state", state), 0, -1, withscores=True)
        members = [item for r in await pipe.execute() for item in r]
        members.sort(key=lambda item: (item[1], item[0]))
        return members

    async def _victims(
        self, kind: str, finished: list[tuple[str, float]], cutoff: float | None, keep: int | None
    ) -> dict[str, None]:
        victims: dict[str, None] = {}
        if cutoff is not None:
            victims.update((m, None) for m, score in finished if score < cutoff)
        if keep is not None:
            newest = await self._r.zrevrange(self._key(kind, "all"), 0, max(keep, 0) - 1)
            kept = set(newest) if keep > 0 else set()
            victims.update((m, None) for m, _ in finished if m not in kept)
        return victims

    async def prune(
        self,
        *,
        older_than_s: float | None = None,
        keep_last: int | None = None,
        max_event_bytes: int | None = None,
    ) -> PruneReport:
        cutoff = None if older_than_s is None else time.time() - older_than_s
        async with self._write_lock:
            finished = await self._finished("execs", FINISHED_EXECUTION_STATES)
            victims = await self._victims("execs", finished, cutoff, keep_last)
            if max_event_bytes is not None:
                sizes = {
                    k: int(v) for k, v in (await self._r.hgetall(self._key("event_bytes"))).items()
                }
                total = sum(size for eid, size in sizes.items() if eid not in victims)
                for eid, _ in finished:
                    if total <= max_event_bytes:
                        break
                    if eid not in victims and eid in sizes:
                        victims[eid] = None
                        total -= sizes[eid]
            events = await self._delete_executions(list(victims))
            finished_lists = await self._finished("tasklists", FINISHED_TASK_LIST_STATES)
            lists = await self._victims("tasklists", finished_lists, cutoff, keep_last)
            await self._delete_task_lists(list(lists))
        if victims or lists:
            logger.info(
                "pruned {} executions ({} events) and {} task lists",
                len(victims),
                events,
                len(lists),
            )
        return PruneReport(executions=len(victims), events=events, task_lists=len(lists))

    async def _delete_executions(self, ids: list[str]) -> int:
        events = 0
        for start in range(0, len(ids), PIPELINE_MAX_COMMANDS):
            chunk = ids[start : start + PIPELINE_MAX_COMMANDS]
            pipe = self._r.pipeline(transaction=False)
            for eid in chunk:
                pipe.hmget(self._key("exec", eid), [_IX_STATE, _IX_LIST])
                pipe.xlen(self._key("events", eid))
            replies = await pipe.execute()
            pipe = self._r.pipeline(transaction=False)
            for i, eid in enumerate(chunk):
                state, list_id = replies[2 * i]
                events += int(replies[2 * i + 1])
                pipe.delete(self._key("exec", eid), self._key("events", eid))
                pipe.zrem(self._key("execs", "all"), eid)
                if state:
                    pipe.zrem(self._key("execs", "state", state), eid)
                if list_id:
                    pipe.zrem(self._key("execs", "list", list_id), eid)
                pipe.hdel(self._key("event_bytes"), eid)
            await pipe.execute()
        return events

    async def _delete_task_lists(self, ids: list[str]) -> None:
        for start in range(0, len(ids), PIPELINE_MAX_COMMANDS):
            chunk = ids[start : start + PIPELINE_MAX_COMMANDS]
            pipe = self._r.pipeline(transaction=False)
            for lid in chunk:
                pipe.hget(self._key("tasklist", lid), _IX_STATE)
            states = await pipe.execute()
            pipe = self._r.pipeline(transaction=False)
            for lid, state in zip(chunk, states, strict=True):
                pipe.delete(self._key("tasklist", lid), self._key("tasks", lid))
                pipe.zrem(self._key("tasklists", "all"), lid)
                if state:
                    pipe.zrem(self._key("tasklists", "state", state), lid)
            await pipe.execute()
