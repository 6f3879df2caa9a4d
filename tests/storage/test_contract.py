"""The one contract suite: every test runs against SqliteStore and a real Redis (``conftest``)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest
from tests.storage.conftest import StoreFactory

from cc_executor.errors import ServiceError
from cc_executor.storage import (
    DurationSample,
    ExecutionRecord,
    HookRunRecord,
    PruneReport,
    Store,
    StoredEvent,
    TaskListRecord,
    TaskRecord,
)

# Quotes, backslashes, control characters (no NUL), SQL and Redis glob metacharacters, RTL and
# line separators, emoji with ZWJ, astral CJK: everything must come back byte for byte.
HOSTILE = (
    'it\'s "quoted" \\back\\slash\t\r\n\x01\x07\x1b[31m\x7f ; DROP TABLE executions; --'
    " *?[x] {p}:{q} %s ${HOME} \u202eevil\u202c \u2028 👩‍💻🦀🎉 ünïcödé 中文 𠜎"
)
HOSTILE_ID = "exec:*?[a]-👩‍💻 '\"\\"
MiB = 1024 * 1024


def execution(eid: str, state: str = "completed", created_at: float = 1.0, **kw: Any) -> Any:
    return ExecutionRecord(
        execution_id=eid, state=state, command=f"echo {eid}", created_at=created_at, **kw
    )


def events(eid: str, seqs: range | list[int], frame: str = "x") -> list[StoredEvent]:
    return [StoredEvent(eid, s, "execution.output", f"{frame}{s}") for s in seqs]


def full_execution(eid: str) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=eid,
        state="running",
        command=f"echo {HOSTILE}",
        argv=["sh", "-c", HOSTILE, ""],
        cwd=f"/tmp/{HOSTILE}",
        agent="claude",
        metadata={HOSTILE: [1, 2.5, None, True, {"nested": HOSTILE}], "n": -(2**53)},
        pid=4242,
        pgid=4242,
        exit_code=-9,
        signal="SIGKILL",
        reason=HOSTILE,
        created_at=1_700_000_000.123456,
        started_at=1_700_000_000.5,
        ended_at=1_700_000_100.0000001,
        execution_time=99.5,
        last_seq=17,
        attempt=2,
        task_list_id="list-1",
        task_index=3,
        timeout=600.0,
        timeout_predicted=True,
        category="claude:code:medium",
        result={"text": HOSTILE, "cost_usd": 0.0123, "tokens": {"input": 10, "output": 20}},
        output_bytes=123_456,
    )


# --- executions ------------------------------------------------------------------------------


async def test_put_and_get_round_trip_every_field(store: Store) -> None:
    record = full_execution(HOSTILE_ID)
    await store.put_execution(record)
    assert await store.get_execution(HOSTILE_ID) == record
    assert await store.get_execution("missing") is None
    minimal = execution("minimal")
    await store.put_execution(minimal)
    assert await store.get_execution("minimal") == minimal


async def test_put_many_upserts_each_in_order_across_statement_slices(store: Store) -> None:
    # More records than one multi-row statement holds, one of them twice (the later wins),
    # and the hostile id: each comes back exactly as the last put of it.
    records = [execution(f"e{i:02d}", "running", created_at=float(i)) for i in range(40)]
    records.append(full_execution(HOSTILE_ID))
    records.append(execution("e07", "completed", exit_code=0, created_at=7.0))
    await store.put_executions(records)
    await store.put_executions([])
    assert await store.count_executions() == 41
    assert await store.get_execution(HOSTILE_ID) == full_execution(HOSTILE_ID)
    got = await store.get_execution("e07")
    assert got is not None
    assert (got.state, got.exit_code) == ("completed", 0)
    assert await store.count_executions(states=["running"]) == 40  # 39 + the hostile one


async def test_put_is_an_upsert_that_moves_between_states(store: Store) -> None:
    await store.put_execution(execution("a", "running", task_list_id="L1"))
    await store.put_execution(execution("a", "completed", exit_code=0, task_list_id="L2"))
    got = await store.get_execution("a")
    assert got is not None
    assert (got.state, got.exit_code) == ("completed", 0)
    assert await store.list_executions(states=["running"]) == []
    assert [r.execution_id for r in await store.list_executions(states=["completed"])] == ["a"]
    assert await store.list_executions(task_list_id="L1") == []
    assert [r.execution_id for r in await store.list_executions(task_list_id="L2")] == ["a"]
    assert await store.count_executions() == 1
    assert await store.count_executions(states=["running"]) == 0


async def test_list_is_newest_first_with_filters_and_paging(store: Store) -> None:
    states = ["running", "completed", "failed", "paused", "completed", "lost"]
    for i, state in enumerate(states):
        await store.put_execution(execution(f"e{i}", state, created_at=100.0 + i))

    def ids(records: list[ExecutionRecord]) -> list[str]:
        return [r.execution_id for r in records]

    assert ids(await store.list_executions()) == ["e5", "e4", "e3", "e2", "e1", "e0"]
    assert ids(await store.list_executions(limit=2)) == ["e5", "e4"]
    assert ids(await store.list_executions(states=["completed"])) == ["e4", "e1"]
    unfinished = await store.list_executions(states=["running", "paused", "pending"])
    assert ids(unfinished) == ["e3", "e0"]
    assert ids(await store.list_executions(before=103.0)) == ["e2", "e1", "e0"]
    assert ids(await store.list_executions(since=103.0)) == ["e5", "e4", "e3"]
    assert ids(await store.list_executions(since=101.0, before=104.0, limit=2)) == ["e3", "e2"]
    assert ids(await store.list_executions(states=["completed", "failed"], limit=2)) == [
        "e4",
        "e2",
    ]
    assert await store.list_executions(states=[]) == []
    assert await store.list_executions(limit=0) == []

    pages: list[str] = []
    before: float | None = None
    while page := await store.list_executions(limit=4, before=before):
        pages.extend(ids(page))
        before = page[-1].created_at
    assert pages == ["e5", "e4", "e3", "e2", "e1", "e0"]


async def test_equal_created_at_orders_by_id_descending(store: Store) -> None:
    for eid in ["b", "a", "c"]:
        await store.put_execution(execution(eid, created_at=5.0))
    assert [r.execution_id for r in await store.list_executions()] == ["c", "b", "a"]


async def test_list_by_task_list(store: Store) -> None:
    await store.put_execution(execution("t0", "completed", 1.0, task_list_id="L", task_index=0))
    await store.put_execution(execution("t1", "failed", 2.0, task_list_id="L", task_index=1))
    await store.put_execution(execution("t2", "running", 3.0, task_list_id="L", task_index=2))
    await store.put_execution(execution("other", "completed", 4.0, task_list_id="M"))
    await store.put_execution(execution("none", "completed", 5.0))
    got = await store.list_executions(task_list_id="L")
    assert [r.execution_id for r in got] == ["t2", "t1", "t0"]
    got = await store.list_executions(task_list_id="L", states=["completed", "failed"], limit=1)
    assert [r.execution_id for r in got] == ["t1"]
    assert await store.list_executions(task_list_id="nope") == []


async def test_count_executions(store: Store) -> None:
    for i, state in enumerate(["running", "completed", "completed", "failed"]):
        await store.put_execution(execution(f"e{i}", state, created_at=float(i)))
    assert await store.count_executions() == 4
    assert await store.count_executions(states=["completed"]) == 2
    assert await store.count_executions(states=["completed", "failed", "completed"]) == 3
    assert await store.count_executions(states=[]) == 0


async def test_writes_are_applied_in_call_order(store: Store) -> None:
    calls = [store.put_execution(execution("same", last_seq=n)) for n in range(1, 41)]
    await asyncio.gather(*calls)
    got = await store.get_execution("same")
    assert got is not None
    assert got.last_seq == 40


# --- events ----------------------------------------------------------------------------------


async def test_append_is_idempotent_per_seq(store: Store) -> None:
    await store.append_events(events("e", range(1, 6)))
    await store.append_events(events("e", range(3, 9), frame="retry"))  # 3..5 again, 6..8 new
    await store.append_events(events("e", [8, 9, 9, 10]))  # duplicates inside one call too
    got = await store.read_events("e", limit=100)
    assert [e.seq for e in got] == list(range(1, 11))
    assert got[2].frame == "x3"  # the first write of a seq wins
    assert got[5].frame == "retry6"
    assert await store.last_event_seq("e") == 10
    await store.append_events([])


async def test_read_events_pages_after_seq(store: Store) -> None:
    await store.append_events(events("e", range(1, 26)))
    await store.append_events(events("other", range(1, 4)))
    seen: list[int] = []
    after = 0
    while page := await store.read_events("e", after_seq=after, limit=10):
        assert len(page) <= 10
        seen.extend(e.seq for e in page)
        after = page[-1].seq
    assert seen == list(range(1, 26))
    assert await store.read_events("e", after_seq=25) == []
    assert await store.read_events("e", after_seq=100) == []
    assert await store.read_events("e", limit=0) == []
    assert [e.seq for e in await store.read_events("e", after_seq=23)] == [24, 25]
    first = (await store.read_events("e", limit=1))[0]
    assert first == StoredEvent("e", 1, "execution.output", "x1")


async def test_events_in_one_call_for_several_executions(store: Store) -> None:
    mixed = [StoredEvent(eid, s, "m", f"{eid}{s}") for s in range(1, 4) for eid in ("a", "b")]
    await store.append_events(mixed)
    assert [e.frame for e in await store.read_events("a")] == ["a1", "a2", "a3"]
    assert [e.frame for e in await store.read_events("b")] == ["b1", "b2", "b3"]
    assert await store.last_event_seq("missing") == 0
    assert await store.read_events("missing") == []


async def test_large_and_hostile_frames_round_trip(store: Store) -> None:
    big_ascii = "a" * MiB
    big_unicode = ("👩‍💻 ü 中 " + HOSTILE) * (MiB // len(HOSTILE.encode()))
    batch = [
        StoredEvent(HOSTILE_ID, 1, "execution.output", big_ascii),
        StoredEvent(HOSTILE_ID, 2, HOSTILE, big_unicode),
        StoredEvent(HOSTILE_ID, 3, "execution.output", ""),
    ]
    await store.append_events(batch)
    assert await store.read_events(HOSTILE_ID) == batch
    assert await store.last_event_seq(HOSTILE_ID) == 3


# --- task lists ------------------------------------------------------------------------------


async def test_task_lists_and_tasks(store: Store) -> None:
    task_list = TaskListRecord(
        list_id=HOSTILE_ID,
        state="running",
        name=HOSTILE,
        queue_paused=True,
        created_at=10.0,
        updated_at=11.5,
        started_at=10.5,
        total_tasks=3,
        metadata={"by": HOSTILE},
    )
    await store.put_task_list(task_list)
    assert await store.get_task_list(HOSTILE_ID) == task_list
    assert await store.get_task_list("missing") is None

    tasks = [
        TaskRecord(
            list_id=HOSTILE_ID,
            index=i,
            spec={"command": f"echo {i}", "prompt": HOSTILE},
            depends_on=list(range(i)),
        )
        for i in range(12)
    ]
    for task in reversed(tasks):
        await store.put_task(task)
    assert await store.get_tasks(HOSTILE_ID) == tasks  # index order, 10 after 9
    done = dataclasses.replace(
        tasks[1],
        state="completed",
        attempts=2,
        execution_ids=["x1", "x2"],
        started_at=1.0,
        ended_at=2.0,
        exit_code=0,
        error=HOSTILE,
        result={"text": HOSTILE},
    )
    await store.put_task(done)
    assert (await store.get_tasks(HOSTILE_ID))[1] == done
    assert await store.get_tasks("missing") == []


async def test_list_task_lists_newest_first_by_state(store: Store) -> None:
    for i, state in enumerate(["completed", "running", "queued", "failed"]):
        await store.put_task_list(TaskListRecord(list_id=f"l{i}", state=state, created_at=i))
    await store.put_task_list(TaskListRecord(list_id="l1", state="paused", created_at=1.0))

    def ids(records: list[TaskListRecord]) -> list[str]:
        return [r.list_id for r in records]

    assert ids(await store.list_task_lists()) == ["l3", "l2", "l1", "l0"]
    assert ids(await store.list_task_lists(limit=1)) == ["l3"]
    assert ids(await store.list_task_lists(states=["running", "paused", "queued"])) == [
        "l2",
        "l1",
    ]
    assert await store.list_task_lists(states=["running"]) == []
    assert await store.list_task_lists(states=[]) == []


# --- hooks and statistics --------------------------------------------------------------------


async def test_hook_runs_newest_first_and_by_hook(store: Store) -> None:
    runs = [
        HookRunRecord(
            hook=hook,
            event="pre_execution",
            started_at=float(i),
            duration_s=0.01 * i,
            ok=i % 2 == 0,
            proceed=i != 3,
            message=HOSTILE if i == 1 else None,
            error="boom" if i == 3 else None,
            execution_id=f"e{i}",
            list_id=None,
        )
        for i, hook in enumerate(["audit", HOSTILE, "audit", "guard"])
    ]
    for run in runs:
        await store.add_hook_run(run)
    assert await store.list_hook_runs() == list(reversed(runs))
    assert await store.list_hook_runs(hook="audit") == [runs[2], runs[0]]
    assert await store.list_hook_runs(hook=HOSTILE) == [runs[1]]
    assert await store.list_hook_runs(limit=2) == [runs[3], runs[2]]
    assert await store.list_hook_runs(hook="none") == []


async def test_durations_per_category_and_all(store: Store) -> None:
    samples = [
        DurationSample(
            category=cat,
            duration_s=10.0 + i,
            recorded_at=100.0 + i,
            execution_id=f"e{i}",
            predicted_timeout_s=60.0 if i else None,
            state="completed" if i != 2 else "timeout",
        )
        for i, cat in enumerate(["claude:code:small", "shell", "claude:code:small", HOSTILE])
    ]
    for sample in samples:
        await store.add_duration(sample)
    assert await store.durations() == list(reversed(samples))
    assert await store.durations(limit=1) == [samples[3]]
    assert await store.durations("claude:code:small") == [samples[2], samples[0]]
    assert await store.durations(HOSTILE) == [samples[3]]
    assert await store.durations("unknown") == []


# --- retention -------------------------------------------------------------------------------


async def test_prune_by_age_keeps_unfinished_and_recent(store: Store) -> None:
    now = time.time()
    old, recent = now - 10_000, now - 10
    for eid, state, created in [
        ("old-done", "completed", old),
        ("old-lost", "lost", old + 1),
        ("old-running", "running", old + 2),
        ("old-paused", "paused", old + 3),
        ("old-waiting", "waiting_for_limit", old + 4),
        ("new-done", "failed", recent),
    ]:
        await store.put_execution(execution(eid, state, created))
        await store.append_events(events(eid, range(1, 4)))
    report = await store.prune(older_than_s=1_000)
    assert report == PruneReport(executions=2, events=6, task_lists=0)
    left = {r.execution_id for r in await store.list_executions()}
    assert left == {"old-running", "old-paused", "old-waiting", "new-done"}
    assert await store.get_execution("old-done") is None
    assert await store.read_events("old-done") == []
    assert await store.last_event_seq("old-lost") == 0
    assert len(await store.read_events("old-running")) == 3
    assert await store.prune(older_than_s=1_000) == PruneReport()
    assert await store.prune() == PruneReport()


async def test_prune_keep_last_counts_every_execution(store: Store) -> None:
    for i, state in enumerate(
        ["completed", "running", "failed", "timeout", "canceled", "completed"]
    ):
        await store.put_execution(execution(f"e{i}", state, created_at=float(i)))
    report = await store.prune(keep_last=2)
    assert report.executions == 3  # e0, e2, e3; e1 is running, e4 and e5 are the newest two
    left = [r.execution_id for r in await store.list_executions()]
    assert left == ["e5", "e4", "e1"]
    assert (await store.prune(keep_last=0)).executions == 2
    assert [r.execution_id for r in await store.list_executions()] == ["e1"]
    assert await store.count_executions() == 1


async def test_prune_by_event_bytes_oldest_first(store: Store) -> None:
    kib = "k" * 1024
    for i, state in enumerate(["completed", "running", "completed", "failed", "completed"]):
        eid = f"e{i}"
        await store.put_execution(execution(eid, state, created_at=float(i)))
        await store.append_events([StoredEvent(eid, s, "m", kib) for s in range(1, 11)])  # 10 KiB
    report = await store.prune(max_event_bytes=25 * 1024)
    # 50 KiB stored; e0 and e2 (the oldest finished) go, e1 is running and stays: 30 KiB, then e3.
    assert report == PruneReport(executions=3, events=30, task_lists=0)
    assert [r.execution_id for r in await store.list_executions()] == ["e4", "e1"]
    assert len(await store.read_events("e1", limit=100)) == 10
    assert await store.prune(max_event_bytes=25 * 1024) == PruneReport()


async def test_prune_task_lists_only_finished(store: Store) -> None:
    now = time.time()
    for lid, state, created in [
        ("old-done", "completed", now - 5_000),
        ("old-canceled", "canceled", now - 4_000),
        ("old-running", "running", now - 3_000),
        ("old-queued", "queued", now - 2_000),
        ("new-failed", "failed", now),
    ]:
        await store.put_task_list(TaskListRecord(list_id=lid, state=state, created_at=created))
        await store.put_task(TaskRecord(list_id=lid, index=0, spec={"command": "true"}))
    report = await store.prune(older_than_s=1_000)
    assert report == PruneReport(executions=0, events=0, task_lists=2)
    assert await store.get_task_list("old-done") is None
    assert await store.get_tasks("old-done") == []
    left = {r.list_id for r in await store.list_task_lists()}
    assert left == {"old-running", "old-queued", "new-failed"}
    assert len(await store.get_tasks("old-running")) == 1
    assert (await store.prune(keep_last=0)).task_lists == 1


# --- lifecycle -------------------------------------------------------------------------------


async def test_everything_survives_reopening(make_store: StoreFactory) -> None:
    first = make_store()
    await first.open()
    record = full_execution("persisted")
    await first.put_execution(record)
    await first.append_events(events("persisted", range(1, 6)))
    task_list = TaskListRecord(list_id="L", state="running", created_at=3.0)
    await first.put_task_list(task_list)
    task = TaskRecord(list_id="L", index=0, spec={"prompt": HOSTILE})
    await first.put_task(task)
    hook_run = HookRunRecord(hook="h", event="post_task", started_at=1.0, duration_s=0.5, ok=True)
    await first.add_hook_run(hook_run)
    sample = DurationSample(category="shell", duration_s=1.5, recorded_at=2.0)
    await first.add_duration(sample)
    await first.close()
    await first.close()  # closing twice is harmless

    second = make_store()
    await second.open()
    try:
        assert await second.get_execution("persisted") == record
        assert await second.list_executions(states=["running"]) == [record]
        assert [e.seq for e in await second.read_events("persisted")] == [1, 2, 3, 4, 5]
        assert await second.get_task_list("L") == task_list
        assert await second.get_tasks("L") == [task]
        assert await second.list_hook_runs() == [hook_run]
        assert await second.durations("shell") == [sample]
        await second.append_events(events("persisted", range(4, 8)))
        assert await second.last_event_seq("persisted") == 7
    finally:
        await second.close()


async def test_calls_before_open_raise_service_error(make_store: StoreFactory) -> None:
    unopened = make_store()
    assert isinstance(unopened, Store)
    with pytest.raises(ServiceError):
        await unopened.put_execution(execution("e"))
    with pytest.raises(ServiceError):
        await unopened.get_execution("e")
    await unopened.close()


async def test_hook_runs_and_durations_are_capped(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("cc_executor.storage.sqlite", "cc_executor.storage.redis"):
        monkeypatch.setattr(f"{module}.HOOK_RUNS_KEPT", 3)
        monkeypatch.setattr(f"{module}.DURATIONS_KEPT_PER_CATEGORY", 2)
    for i in range(5):
        await store.add_hook_run(
            HookRunRecord(hook="h", event="pre_task", started_at=i, duration_s=0.0, ok=True)
        )
        await store.add_duration(DurationSample(category="a", duration_s=i, recorded_at=i))
        await store.add_duration(DurationSample(category="b", duration_s=i, recorded_at=i))
    assert [r.started_at for r in await store.list_hook_runs(limit=10)] == [4.0, 3.0, 2.0]
    assert [s.duration_s for s in await store.durations("a")] == [4.0, 3.0]
    assert [s.duration_s for s in await store.durations("b")] == [4.0, 3.0]


async def test_owner_heartbeats_and_owner_fields(store: Store) -> None:
    assert await store.owner_heartbeats() == {}
    await store.heartbeat("daemon-a", 100.0)
    await store.heartbeat("embedded-b", 150.5)
    await store.heartbeat("daemon-a", 200.25)  # the newest heartbeat replaces the older one
    assert await store.owner_heartbeats() == {"daemon-a": 200.25, "embedded-b": 150.5}
    await store.forget_owner("embedded-b")
    await store.forget_owner("never-seen")  # no error
    assert await store.owner_heartbeats() == {"daemon-a": 200.25}
    await store.put_execution(ExecutionRecord("e1", "running", "true", owner="daemon-a"))
    await store.put_task_list(TaskListRecord("l1", owner="daemon-a"))
    execution = await store.get_execution("e1")
    task_list = await store.get_task_list("l1")
    assert execution is not None
    assert execution.owner == "daemon-a"
    assert task_list is not None
    assert task_list.owner == "daemon-a"


async def test_claim_task_list_is_a_compare_and_set(store: Store) -> None:
    assert not await store.claim_task_list("nope", expected_owner=None, owner="b", at=1.0)
    await store.put_task_list(TaskListRecord("l1", owner="dead"))
    results = await asyncio.gather(
        *(
            store.claim_task_list("l1", expected_owner="dead", owner=f"o{i}", at=2.0)
            for i in range(5)
        )
    )
    assert sorted(results) == [False] * 4 + [True]
    winner = f"o{results.index(True)}"
    claimed = await store.get_task_list("l1")
    assert claimed is not None
    assert claimed.owner == winner
    assert claimed.updated_at == 2.0
    await store.put_task_list(TaskListRecord("l2"))
    assert await store.claim_task_list("l2", expected_owner=None, owner="x", at=3.0)
    assert not await store.claim_task_list("l2", expected_owner=None, owner="y", at=3.0)
