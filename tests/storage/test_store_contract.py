"""One suite for every task store: the in-memory one (no server) and MongoDB (the real server).

What the engine relies on is written here once; both implementations must pass it, so that the
in-process tier's tests on `MemoryTaskStore` say something about production.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from consumers.storage.base import PendingCancel, TaskStore
from consumers.storage.memory import MemoryTaskStore
from consumers.storage.mongo import MongoTaskStore
from consumers.storage.task import OutboxEntry
from schemas.status import TaskStatus
from tests.factories import make_task


@pytest.fixture(
    params=["memory", pytest.param("mongo", marks=pytest.mark.integration)],
)
def store(request: pytest.FixtureRequest) -> TaskStore:
    if request.param == "memory":
        return MemoryTaskStore()
    mongo: MongoTaskStore = request.getfixturevalue("mongo_store")
    return mongo


def entry(sequence: int, status: str) -> OutboxEntry:
    return OutboxEntry(kind="status", body={"sequence": sequence, "status": status})


async def test_insert_reports_duplicates_by_request_id(store: TaskStore) -> None:
    first = make_task(request_id="dup-1")
    assert await store.insert_many([first]) == set()
    again = make_task(request_id="dup-1")
    other = make_task(request_id="dup-2")
    assert await store.insert_many([other, again]) == {1}
    found = await store.find_by_request_id("dup-1")
    assert found is not None and found.id == first.id
    assert found.status is TaskStatus.ACCEPTED and found.events[0].body["status"] == "accepted"


async def test_insert_of_one_duplicate_alone(store: TaskStore) -> None:
    await store.insert_many([make_task(request_id="solo")])
    assert await store.insert_many([make_task(request_id="solo")]) == {0}


async def test_move_is_guarded_by_owner_and_sequence(store: TaskStore) -> None:
    task = make_task()
    await store.insert_many([task])
    moved = await store.move(
        task, "me", {"status": "submitted", "sequence": 2}, [entry(2, "submitted")]
    )
    assert moved is not None and moved.status is TaskStatus.SUBMITTED
    assert [e.body["status"] for e in moved.events] == ["accepted", "submitted"]
    # The same version again (a stale writer), or another owner: refused.
    assert await store.move(task, "me", {"upstream_status": "x"}) is None
    assert await store.move(moved, "someone-else", {"upstream_status": "x"}) is None
    stored = await store.get(task.id)
    assert stored is not None and stored.upstream_status is None and stored.sequence == 2


async def test_concurrent_moves_of_one_version_let_exactly_one_through(store: TaskStore) -> None:
    task = make_task()
    await store.insert_many([task])
    results = await asyncio.gather(
        *(store.move(task, "me", {"sequence": 2, "upstream_status": str(i)}) for i in range(20))
    )
    assert sum(r is not None for r in results) == 1


async def test_moves_made_together_each_get_their_own_answer(store: TaskStore) -> None:
    # MongoDB sends moves made together in one bulk write: the refused ones among them (held by
    # another owner, or with a cancel requested) must be told apart from those that landed.
    tasks = [make_task(owner="other" if i % 3 == 1 else "me") for i in range(12)]
    await store.insert_many(tasks)
    at = datetime.now(UTC)
    for task in tasks[2::3]:
        await store.request_cancel(task.id, None, "me", at, at)
    results = await asyncio.gather(
        *(
            store.move(t, "me", {"status": "submitted", "sequence": 2}, [entry(2, "submitted")])
            for t in tasks
        )
    )
    for i, (task, moved) in enumerate(zip(tasks, results, strict=True)):
        stored = await store.get(task.id)
        assert stored is not None
        if i % 3:
            assert moved is None and stored.status is TaskStatus.ACCEPTED and stored.sequence == 1
        else:
            assert moved is not None and stored.status is TaskStatus.SUBMITTED
            assert (moved.status, moved.sequence, moved.lease_owner) == (
                stored.status,
                stored.sequence,
                stored.lease_owner,
            )
            assert [e.body for e in moved.events] == [e.body for e in stored.events]


async def test_a_requested_cancel_stops_ordinary_moves_but_not_the_cancel_step(
    store: TaskStore,
) -> None:
    task = make_task()
    await store.insert_many([task])
    at = datetime.now(UTC)
    marked = await store.request_cancel(task.id, "changed my mind", "other", at, at)
    assert marked is not None and marked.cancel_requested_at is not None
    assert marked.lease_owner == "other" and marked.cancel_reason == "changed my mind"
    assert await store.move(marked, "other", {"upstream_status": "x"}) is None
    done = await store.move(
        marked, "other", {"status": "cancelled", "sequence": 2}, even_if_cancelling=True
    )
    assert done is not None and done.status is TaskStatus.CANCELLED
    # Terminal now: a second cancel finds nothing to do.
    assert await store.request_cancel(task.id, None, "me", at, at) is None


async def test_a_second_cancel_keeps_the_first_reason(store: TaskStore) -> None:
    task = make_task()
    await store.insert_many([task])
    at = datetime.now(UTC)
    await store.request_cancel(task.id, "first", "a", at, at)
    again = await store.request_cancel(task.id, "second", "b", at, at + timedelta(seconds=5))
    assert again is not None and again.cancel_reason == "first" and again.lease_owner == "b"


async def test_record_submit_needs_the_same_ticket_and_an_accepted_task(store: TaskStore) -> None:
    task = make_task(submit_ticket="t-1")
    await store.insert_many([task])
    assert await store.record_submit(task, "t-0", {"upstream_task_id": "u"}, []) is None
    # Whoever holds the lease now (even after a takeover or a cancel request), it lands.
    at = datetime.now(UTC)
    await store.request_cancel(task.id, None, "other", at, at)
    recorded = await store.record_submit(
        task, "t-1", {"status": "submitted", "sequence": 2, "upstream_task_id": "u"}, []
    )
    assert recorded is not None and recorded.upstream_task_id == "u"
    assert await store.record_submit(task, "t-1", {"upstream_task_id": "v"}, []) is None


async def test_old_documents_without_new_fields_load_and_move(store: TaskStore) -> None:
    task = make_task()
    await store.insert_many([task])
    loaded = await store.get(task.id)
    assert (
        loaded is not None and loaded.cancel_requested_at is None and loaded.submit_ticket is None
    )
    assert await store.move(loaded, "me", {"upstream_status": "PENDING"}) is not None


async def test_leases_renew_claim_and_release(store: TaskStore) -> None:
    now = datetime.now(UTC)
    mine = make_task(owner="a", now=now, lease_s=10)
    expired = make_task(owner="b", now=now, lease_s=-1)
    await store.insert_many([mine, expired])
    assert await store.renew_leases("a", now + timedelta(seconds=20)) == 1
    assert await store.held_task_ids("a") == {mine.id}
    claimed = await store.claim_expired("a", now, now + timedelta(seconds=20), 10)
    assert [t.id for t in claimed] == [expired.id] and claimed[0].lease_owner == "a"
    # Claimed once: nothing left to claim.
    assert await store.claim_expired("c", now, now + timedelta(seconds=20), 10) == []
    assert await store.release_leases("a", keep={mine.id}, now=now) == 1
    assert await store.held_task_ids("a") == {mine.id}


async def test_finished_tasks_leave_the_scans(store: TaskStore) -> None:
    now = datetime.now(UTC)
    task = make_task(owner="a", now=now, lease_s=-1)
    await store.insert_many([task])
    await store.mark_finished(task.id, 1)
    assert await store.held_task_ids("a") == set()
    assert await store.claim_expired("b", now, now, 10) == []
    stored = await store.get(task.id)
    assert stored is not None and stored.active is False and stored.published == 1


async def test_tasks_finishing_together_are_all_marked(store: TaskStore) -> None:
    tasks = [make_task(owner="a") for _ in range(30)]
    await store.insert_many(tasks)
    await asyncio.gather(*(store.mark_finished(t.id, n % 3 + 1) for n, t in enumerate(tasks)))
    assert await store.held_task_ids("a") == set()
    for n, task in enumerate(tasks):
        stored = await store.get(task.id)
        assert stored is not None and not stored.active and stored.published == n % 3 + 1


async def test_get_many_returns_the_known_ones(store: TaskStore) -> None:
    one, two = make_task(), make_task()
    await store.insert_many([one, two])
    found = await store.get_many([one.id, two.id, "unknown"])
    assert sorted(t.id for t in found) == sorted([one.id, two.id])


async def test_pending_cancels_expire(store: TaskStore) -> None:
    now = datetime.now(UTC)
    live = PendingCancel("early-1", "oops", "u-1", False, now + timedelta(seconds=60))
    old = PendingCancel("early-2", None, None, True, now - timedelta(seconds=1))
    await store.remember_cancel(live)
    await store.remember_cancel(old)
    found = await store.pending_cancels(["early-1", "early-2", "early-3"], now)
    assert list(found) == ["early-1"]
    assert found["early-1"].reason == "oops" and found["early-1"].user_id == "u-1"
    await store.forget_cancel("early-1")
    assert await store.pending_cancels(["early-1"], now) == {}


async def test_clock_is_the_databases(store: TaskStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    moment = await store.clock()
    assert moment.tzinfo is not None and before < moment < before + timedelta(seconds=60)


async def test_learned_durations_are_kept(store: TaskStore) -> None:
    assert await store.load_durations() == {}
    await store.save_durations({"wanx2.1-t2v-plus": 180.5, "cogvideox-2": 30.0})
    await store.save_durations({"cogvideox-2": 25.0, "wanx2.1-t2v-plus": 180.5})
    assert await store.load_durations() == {"wanx2.1-t2v-plus": 180.5, "cogvideox-2": 25.0}


async def test_turns_of_a_shared_rate_are_spaced(store: TaskStore) -> None:
    now = datetime.now(UTC)
    turns = await asyncio.gather(*(store.reserve_turn("submit:m", 0.5, now) for _ in range(6)))
    offsets = sorted(round((t - now).total_seconds(), 2) for t in turns)
    assert offsets == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    later = now + timedelta(seconds=10)
    assert await store.reserve_turn("submit:m", 0.5, later) == later  # idle: at once


async def test_running_slots_are_shared_and_come_back_after_their_lease(store: TaskStore) -> None:
    now = datetime.now(UTC)
    soon, later = now + timedelta(seconds=1), now + timedelta(seconds=30)
    assert await store.claim_slot("run:m", 2, "t1", "a", soon, now)
    assert await store.claim_slot("run:m", 2, "t2", "b", later, now)
    assert not await store.claim_slot("run:m", 2, "t3", "b", later, now)
    assert await store.claim_slot("run:m", 2, "t1", "a", later, now), "a holder keeps its slot"
    await store.release_slot("run:m", "t2")
    assert await store.claim_slot("run:m", 2, "t3", "b", later, now)
    # t1's keeper dies: its slot is free once its lease has run out.
    assert not await store.claim_slot("run:m", 2, "t4", "c", later, now)
    assert await store.claim_slot("run:m", 2, "t4", "c", later, later + timedelta(seconds=1))


async def test_slots_are_renewed_and_kept_by_their_new_owner(store: TaskStore) -> None:
    now = datetime.now(UTC)
    short = now + timedelta(seconds=1)
    assert await store.claim_slot("run:k", 1, "t1", "a", short, now)
    await store.renew_slots("a", ["t1"], now + timedelta(seconds=60))
    after = now + timedelta(seconds=5)
    assert not await store.claim_slot("run:k", 1, "t2", "b", after, after), "renewed: still held"
    assert await store.keep_slot("run:k", "t1", "b", now + timedelta(seconds=60))
    assert not await store.keep_slot("run:k", "t9", "b", now)


async def test_upstream_ids_of_a_model_since_a_time(store: TaskStore) -> None:
    now = datetime.now(UTC)
    old = make_task(upstream_task_id="u-old", submitted_at=now - timedelta(seconds=60))
    new = make_task(upstream_task_id="u-new", submitted_at=now)
    other = make_task(model="cogvideox-2", upstream_task_id="u-other", submitted_at=now)
    waiting = make_task()
    await store.insert_many([old, new, other, waiting])
    since = now - timedelta(seconds=5)
    assert await store.upstream_ids_since("zhipuai", "cogvideox-flash", since) == {"u-new"}


async def test_a_ticket_never_sent_is_dropped_whoever_holds_the_task(store: TaskStore) -> None:
    task = make_task(submit_ticket="t-1", submit_started_at=datetime.now(UTC))
    await store.insert_many([task])
    at = datetime.now(UTC)
    await store.request_cancel(task.id, None, "someone-else", at, at)  # moved meanwhile
    cleared = {"submit_ticket": None, "submit_started_at": None, "submit_attempts": 0}
    await store.drop_ticket(task.id, "t-0", cleared)
    kept = await store.get(task.id)
    assert kept is not None and kept.submit_ticket == "t-1"
    await store.drop_ticket(task.id, "t-1", cleared)
    dropped = await store.get(task.id)
    assert dropped is not None and dropped.submit_ticket is None and not dropped.submit_unresolved


async def test_a_resend_never_sent_leaves_the_earlier_attempt_unresolved(store: TaskStore) -> None:
    started = datetime.now(UTC).replace(microsecond=0)
    task = make_task(submit_ticket="resend", submit_started_at=started, submit_attempts=1)
    await store.insert_many([task])
    earlier = {"submit_ticket": "first", "submit_started_at": started, "submit_attempts": 1}
    await store.drop_ticket(task.id, "resend", earlier)
    back = await store.get(task.id)
    assert back is not None and back.submit_unresolved and back.submit_ticket == "first"


async def test_leases_of_some_tasks_only(store: TaskStore) -> None:
    now = datetime.now(UTC)
    one, two = make_task(owner="a", lease_s=1), make_task(owner="a", lease_s=1)
    await store.insert_many([one, two])
    later = (now + timedelta(seconds=60)).replace(microsecond=0)  # MongoDB keeps milliseconds
    assert await store.renew_leases("a", later, task_ids=[one.id]) == 1
    renewed, kept = await store.get(one.id), await store.get(two.id)
    assert renewed is not None and kept is not None
    assert renewed.lease_until == later and kept.lease_until != later


async def test_unresolved_submits_of_a_model_since_a_time(store: TaskStore) -> None:
    now = datetime.now(UTC)
    sent = make_task(submit_ticket="t", submit_started_at=now)
    recorded = make_task(status="submitted", submit_started_at=now, upstream_task_id="u")
    given_up = make_task(status="failed", submit_started_at=now)
    earlier = make_task(submit_ticket="t", submit_started_at=now - timedelta(seconds=60))
    other_model = make_task(model="cogvideox-2", submit_ticket="t", submit_started_at=now)
    await store.insert_many([sent, recorded, given_up, earlier, other_model])
    since = now - timedelta(seconds=5)
    found = await store.submits_unresolved_since("zhipuai", "cogvideox-flash", since)
    assert found == {sent.id, given_up.id}
