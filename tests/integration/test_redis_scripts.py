"""Every Lua script, called directly through ``roadie.scripts.Scripts`` on real Redis."""

from __future__ import annotations

import pytest
import redis

from roadie.scripts import Scripts

INFLIGHT = "roadie:inflight:host:1:aaaaaaaaaaaa"
ALIVE = "roadie:alive:host:1:aaaaaaaaaaaa"


# --- fetch --------------------------------------------------------------------


def test_fetch_takes_earlier_queue_first_and_moves_into_inflight(r: redis.Redis) -> None:
    s = Scripts(r)
    r.lpush("queue:a", b"a1", b"a2")  # LPUSH a1 then a2: a1 is the oldest, at the tail
    r.lpush("queue:b", b"b1")

    assert s.fetch(INFLIGHT, ["queue:a", "queue:b"], 1) == [("queue:a", b"a1")]
    assert r.lrange(INFLIGHT, 0, -1) == [b"a1"]
    assert r.lrange("queue:a", 0, -1) == [b"a2"]
    assert r.lrange("queue:b", 0, -1) == [b"b1"]  # strict: b starves while a has jobs


def test_fetch_count_spans_queues_in_the_given_order(r: redis.Redis) -> None:
    s = Scripts(r)
    r.lpush("queue:a", b"a1", b"a2")
    r.lpush("queue:b", b"b1", b"b2")

    got = s.fetch(INFLIGHT, ["queue:a", "queue:b"], 3)

    assert got == [("queue:a", b"a1"), ("queue:a", b"a2"), ("queue:b", b"b1")]
    # Each job is pushed onto the head of the in-flight list as it is taken.
    assert r.lrange(INFLIGHT, 0, -1) == [b"b1", b"a2", b"a1"]
    assert r.exists("queue:a") == 0
    assert r.lrange("queue:b", 0, -1) == [b"b2"]


def test_fetch_follows_the_key_order_it_is_given(r: redis.Redis) -> None:
    s = Scripts(r)
    r.lpush("queue:a", b"a1")
    r.lpush("queue:b", b"b1")

    assert s.fetch(INFLIGHT, ["queue:b", "queue:a"], 1) == [("queue:b", b"b1")]


def test_fetch_skips_empty_earlier_queues(r: redis.Redis) -> None:
    s = Scripts(r)
    r.lpush("queue:c", b"c1")

    got = s.fetch(INFLIGHT, ["queue:a", "queue:b", "queue:c"], 1)

    assert got == [("queue:c", b"c1")]
    assert r.lrange(INFLIGHT, 0, -1) == [b"c1"]


def test_fetch_from_empty_queues_returns_nothing_and_writes_nothing(r: redis.Redis) -> None:
    s = Scripts(r)

    assert s.fetch(INFLIGHT, ["queue:a", "queue:b"], 5) == []
    assert r.dbsize() == 0


def test_fetch_is_fifo_with_lpush(r: redis.Redis) -> None:
    s = Scripts(r)
    for i in range(5):
        r.lpush("queue:a", f"j{i}".encode())  # one push per job, as clients do

    taken = [raw for _, raw in s.fetch(INFLIGHT, ["queue:a"], 10)]

    assert taken == [b"j0", b"j1", b"j2", b"j3", b"j4"]


def test_fetch_keeps_every_job_in_exactly_one_place(r: redis.Redis) -> None:
    s = Scripts(r)
    jobs = [f"j{i}".encode() for i in range(7)]
    r.lpush("queue:a", *jobs[:4])
    r.lpush("queue:b", *jobs[4:])

    s.fetch(INFLIGHT, ["queue:a", "queue:b"], 5)

    everywhere = (
        r.lrange("queue:a", 0, -1) + r.lrange("queue:b", 0, -1) + r.lrange(INFLIGHT, 0, -1)
    )
    assert sorted(everywhere) == sorted(jobs)
    assert r.llen(INFLIGHT) == 5


@pytest.mark.parametrize(("length", "share", "want", "taken"), [
    (100, 10, 10, 10),  # deep: a full batch
    (25, 10, 10, 2),    # 25 jobs for 10 processors: 2 each
    (5, 10, 10, 1),     # shallow: one at a time, so that every processor gets work
    (5, 0, 10, 5),      # share 0: as many as asked
])
def test_fetch_takes_a_batch_only_from_a_deep_queue(
    r: redis.Redis, length: int, share: int, want: int, taken: int
) -> None:
    r.lpush("queue:a", *[f"j{i}".encode() for i in range(length)])

    got = Scripts(r).fetch(INFLIGHT, ["queue:a"], want, share=share)

    assert [raw for _, raw in got] == [f"j{i}".encode() for i in range(taken)]
    assert r.llen(INFLIGHT) == taken and r.llen("queue:a") == length - taken


def test_fetch_acknowledges_several_jobs_first(r: redis.Redis) -> None:
    r.lpush(INFLIGHT, b"done1", b"running", b"done2")
    r.lpush("queue:a", b"next")

    got = Scripts(r).fetch(INFLIGHT, ["queue:a"], 1, acks=[b"done1", b"done2"])

    assert got == [("queue:a", b"next")]
    assert r.lrange(INFLIGHT, 0, -1) == [b"next", b"running"]


# --- enqueue_due ----------------------------------------------------------------


def test_enqueue_due_moves_only_members_it_removes(r: redis.Redis) -> None:
    s = Scripts(r)
    r.zadd("schedule", {b"old1": 1.0, b"old2": 2.0})

    moved = s.enqueue_due(
        "schedule",
        "queues",
        [
            (b"old1", b"new1", "queue:a", "a"),
            (b"not-in-the-set", b"ghost", "queue:a", "a"),
        ],
    )

    assert moved == 1
    assert r.lrange("queue:a", 0, -1) == [b"new1"]
    assert r.zrange("schedule", 0, -1) == [b"old2"]
    assert r.smembers("queues") == {b"a"}


def test_enqueue_due_skips_a_member_another_caller_removed(r: redis.Redis) -> None:
    s = Scripts(r)
    r.zadd("retry", {b"old": 1.0})
    r.zrem("retry", b"old")  # another poller got there first

    assert s.enqueue_due("retry", "queues", [(b"old", b"new", "queue:a", "a")]) == 0
    assert r.exists("queue:a") == 0
    assert r.exists("queues") == 0


def test_enqueue_due_twice_pushes_once(r: redis.Redis) -> None:
    s = Scripts(r)
    r.zadd("retry", {b"old": 1.0})
    move = [(b"old", b"new", "queue:a", "a")]

    assert s.enqueue_due("retry", "queues", move) == 1
    assert s.enqueue_due("retry", "queues", move) == 0
    assert r.lrange("queue:a", 0, -1) == [b"new"]


def test_enqueue_due_removes_a_dropped_entry_without_pushing(r: redis.Redis) -> None:
    s = Scripts(r)
    r.zadd("schedule", {b"dropme": 1.0, b"keep": 2.0})

    moved = s.enqueue_due("schedule", "queues", [(b"dropme", None, "queue:a", "a")])

    assert moved == 0
    assert r.zrange("schedule", 0, -1) == [b"keep"]
    assert r.exists("queue:a") == 0
    assert r.exists("queues") == 0


def test_enqueue_due_routes_to_several_queues_in_fifo_order(r: redis.Redis) -> None:
    s = Scripts(r)
    r.zadd("schedule", {b"m1": 1.0, b"m2": 2.0, b"m3": 3.0})

    moved = s.enqueue_due(
        "schedule",
        "queues",
        [
            (b"m1", b"n1", "queue:a", "a"),
            (b"m2", b"n2", "queue:b", "b"),
            (b"m3", b"n3", "queue:a", "a"),
        ],
    )

    assert moved == 3
    assert r.zcard("schedule") == 0
    assert r.rpop("queue:a") == b"n1"  # pushed first, runs first
    assert r.rpop("queue:a") == b"n3"
    assert r.lrange("queue:b", 0, -1) == [b"n2"]
    assert r.smembers("queues") == {b"a", b"b"}


# --- recover ---------------------------------------------------------------------


def _recover(s: Scripts, entries: list[tuple[bytes, str, bytes, str | None]], *,
             now: float = 1_000_000.0, cutoff: float = 0.0, dead_max: int = 100) -> int:
    return s.recover(INFLIGHT, ALIVE, "dead", now, cutoff, dead_max, entries)


def test_recover_refuses_while_the_owner_is_alive(r: redis.Redis) -> None:
    s = Scripts(r)
    r.lpush(INFLIGHT, b"j1")
    r.set(ALIVE, b"1")

    assert _recover(s, [(b"j1", "q", b"j1+", "queue:a")]) == -1
    assert r.lrange(INFLIGHT, 0, -1) == [b"j1"]
    assert r.exists("queue:a") == 0
    assert r.exists("dead") == 0


def test_recover_requeues_to_the_tail_so_the_job_runs_next(r: redis.Redis) -> None:
    s = Scripts(r)
    r.lpush("queue:a", b"waiting")
    r.lpush(INFLIGHT, b"j1")

    assert _recover(s, [(b"j1", "q", b"j1-recovered", "queue:a")]) == 1

    assert r.exists(INFLIGHT) == 0
    assert r.lrange("queue:a", 0, -1) == [b"waiting", b"j1-recovered"]
    assert r.rpop("queue:a") == b"j1-recovered"


def test_recover_sends_d_entries_to_dead_with_now_as_score(r: redis.Redis) -> None:
    s = Scripts(r)
    r.lpush(INFLIGHT, b"bad", b"good")

    handled = _recover(
        s,
        [(b"bad", "d", b"bad-with-error", None), (b"good", "q", b"good", "queue:a")],
        now=1_234_567.5,
    )

    assert handled == 2
    assert r.zrange("dead", 0, -1, withscores=True) == [(b"bad-with-error", 1_234_567.5)]
    assert r.lrange("queue:a", 0, -1) == [b"good"]
    assert r.exists(INFLIGHT) == 0


def test_recover_skips_entries_no_longer_in_flight(r: redis.Redis) -> None:
    s = Scripts(r)
    r.lpush(INFLIGHT, b"j1")

    handled = _recover(
        s, [(b"gone", "q", b"gone", "queue:a"), (b"j1", "q", b"j1", "queue:a")]
    )

    assert handled == 1
    assert r.lrange("queue:a", 0, -1) == [b"j1"]


def test_recover_trims_dead_by_age(r: redis.Redis) -> None:
    s = Scripts(r)
    r.zadd("dead", {b"ancient": 100.0, b"at-cutoff": 500.0, b"recent": 900.0})
    r.lpush(INFLIGHT, b"j1")

    _recover(s, [(b"j1", "d", b"j1-dead", None)], now=1000.0, cutoff=500.0)

    # Strictly older than the cutoff goes; the cutoff itself stays.
    assert r.zrange("dead", 0, -1) == [b"at-cutoff", b"recent", b"j1-dead"]


def test_recover_trims_dead_by_size_keeping_the_newest(r: redis.Redis) -> None:
    s = Scripts(r)
    r.zadd("dead", {f"d{i}".encode(): float(i) for i in range(1, 6)})
    r.lpush(INFLIGHT, b"j1")

    _recover(s, [(b"j1", "d", b"j1-dead", None)], now=1000.0, dead_max=3)

    assert r.zrange("dead", 0, -1) == [b"d4", b"d5", b"j1-dead"]


def test_recover_that_handles_nothing_does_not_trim(r: redis.Redis) -> None:
    s = Scripts(r)
    r.zadd("dead", {b"ancient": 1.0, b"d2": 2.0})

    assert _recover(s, [(b"gone", "d", b"x", None)], now=1000.0, cutoff=500.0,
                    dead_max=1) == 0
    assert r.zrange("dead", 0, -1) == [b"ancient", b"d2"]


# --- requeue -------------------------------------------------------------------


def test_requeue_script_pushes_back_to_the_tail_only_what_it_removes(r: redis.Redis) -> None:
    s = Scripts(r)
    r.lpush("queue:a", b"later")
    r.rpush(INFLIGHT, b"x", b"y")

    assert s.requeue(INFLIGHT, [(b"x", "queue:a"), (b"gone", "queue:a"), (b"y", "queue:b")]) == 2

    assert r.lrange("queue:a", 0, -1) == [b"later", b"x"]  # x runs next
    assert r.lrange("queue:b", 0, -1) == [b"y"]
    assert r.exists(INFLIGHT) == 0
    assert r.exists("queue:gone") == 0
