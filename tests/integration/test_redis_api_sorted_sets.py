"""roadie/api/sorted_sets.py against a real Redis: the retry, scheduled and dead sets
read, and every action on an entry (retry, add to queue, delete, kill, reschedule, and
their *_all forms) exact: it moves the member it names, once.

Data comes from roadie itself (its client) and from payloads as Sidekiq writes them
(SIDEKIQ-WIRE.md: 6.4 captures, 8.x shapes), so the same readers are proven on both.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
from integration_support import RUBY_JOB, RUBY_RETRY, SK8_RETRY, job_with_times, loads

from roadie.api import DeadSet, JobKilled, RetrySet, ScheduledSet
from roadie.client import Client
from roadie.config import Config
from roadie.middleware import Hooks


def test_retry_set_reads_sidekiq_6_and_8_entries(r: redis.Redis, config: Config) -> None:
    r.zadd("retry", {RUBY_RETRY: 1795869100.25, SK8_RETRY: 1754000024.87})
    rs = RetrySet(config)
    assert rs.size() == 2
    first, second = rs.entries()
    assert first.score == 1754000024.87
    assert first.record.failed_at == pytest.approx(1754000001.010)
    assert first.record.created_at == pytest.approx(1754000000.123)
    assert first.record.error_class == "RuntimeError"
    assert second.record.retry_count == 1
    assert second.record.error_message == "boom 7"
    assert [e.jid for e in rs.entries(reverse=True)] == [second.jid, first.jid]
    found = rs.find_job("573528414260915c54e46568")
    assert found is not None and found.raw == RUBY_RETRY.encode()
    assert rs.find_job("ffffffffffffffffffffffff") is None
    assert [e.jid for e in rs.fetch(1795869100.25)] == ["573528414260915c54e46568"]


def test_retry_now_decrements_refreshes_enqueued_at_and_runs_client_middleware(
    r: redis.Redis, config: Config
) -> None:
    r.zadd("retry", {RUBY_RETRY: time.time() + 500})
    seen: list[str] = []
    hooks = Hooks()

    def mark(name: str, payload: dict[str, Any], queue: str, call_next: Any) -> Any:
        seen.append(name)
        payload["marked"] = True
        return call_next()

    hooks.client_middleware.append(mark)
    entry = RetrySet(config, hooks=hooks).find_job("573528414260915c54e46568")
    assert entry is not None
    before = time.time()
    assert entry.retry()
    assert r.zcard("retry") == 0
    assert r.smembers("queues") == {b"other"}
    [raw] = r.lrange("queue:other", 0, -1)
    job = loads(raw)
    assert job["retry_count"] == 0
    assert job["enqueued_at"] >= before
    assert job["created_at"] == 1795869059.9206307
    assert job["jid"] == "573528414260915c54e46568"
    assert job["marked"] is True and seen == ["FailJob"]
    # The entry is gone: a second retry does nothing (no duplicate push).
    assert not entry.retry()
    assert r.llen("queue:other") == 1


def test_add_to_queue_keeps_the_retry_count(r: redis.Redis, config: Config,
                                           client: Client) -> None:
    client.push({"class": "Later", "args": [1], "at": time.time() + 3600})
    ss = ScheduledSet(config)
    [entry] = ss.entries()
    assert "enqueued_at" not in entry.payload
    assert entry.add_to_queue()
    job = loads(r.lindex("queue:default", 0))
    assert job["class"] == "Later" and "retry_count" not in job
    assert isinstance(job["enqueued_at"], float)
    assert ss.size() == 0


def test_delete_removes_only_the_exact_member(r: redis.Redis, config: Config) -> None:
    r.zadd("retry", {RUBY_RETRY: 100.0, SK8_RETRY: 100.0})
    rs = RetrySet(config)
    [a, b] = rs.fetch(100.0)
    assert a.delete()
    assert not a.delete()
    assert [e.raw for e in rs.entries()] == [b.raw]


def test_kill_moves_to_dead_trims_and_calls_death_handlers(r: redis.Redis,
                                                            config: Config) -> None:
    small = config.replace(dead_max_jobs=2)
    recent = time.time() - 100
    for i in range(3):
        r.zadd("dead", {json.dumps({"class": "Old", "args": [i], "jid": f"{i:024d}"}): recent + i})
    r.zadd("retry", {RUBY_RETRY: time.time() + 60})
    died: list[tuple[str, BaseException]] = []
    hooks = Hooks()
    hooks.death_handlers.append(lambda payload, exc: died.append((payload["jid"], exc)))
    entry = RetrySet(small, hooks=hooks).find_job("573528414260915c54e46568")
    assert entry is not None
    before = time.time()
    assert entry.kill()
    assert r.zcard("retry") == 0
    dead = r.zrange("dead", 0, -1, withscores=True)
    # Trimmed to the newest dead_max_jobs, the killed job (scored now) included.
    assert len(dead) == 2
    assert dead[-1][0] == RUBY_RETRY.encode()
    assert dead[-1][1] >= before
    assert [d[0] for d in died] == ["573528414260915c54e46568"]
    assert isinstance(died[0][1], JobKilled)
    # Gone already: a second kill adds nothing and calls no handler.
    assert not entry.kill()
    assert len(died) == 1 and r.zcard("dead") == 2


def test_kill_of_a_member_removed_meanwhile_adds_no_ghost(r: redis.Redis,
                                                          config: Config) -> None:
    r.zadd("retry", {RUBY_RETRY: 5.0})
    [entry] = RetrySet(config).entries()
    r.zrem("retry", RUBY_RETRY)
    assert not entry.kill()
    assert r.zcard("dead") == 0


def test_retry_all_kill_all_delete_all(r: redis.Redis, config: Config) -> None:
    now = time.time()
    for i in range(250):
        r.zadd("retry", {json.dumps({"class": "F", "args": [i], "queue": "q", "jid": f"{i:024x}",
                                     "retry_count": 3}): now + i})
    r.zadd("retry", {b"not json at all": now})
    rs = RetrySet(config)
    assert rs.retry_all() == 250
    assert r.llen("queue:q") == 250
    assert all(loads(raw)["retry_count"] == 2 for raw in r.lrange("queue:q", 0, -1))
    # The garbage member stays: nothing could run it.
    assert r.zrange("retry", 0, -1) == [b"not json at all"]
    for i in range(120):
        r.zadd("retry", {json.dumps({"class": "F", "args": [i], "jid": f"{i:024x}"}): now})
    assert rs.kill_all(notify=False) == 121
    assert r.zcard("retry") == 0 and r.zcard("dead") == 121
    DeadSet(config).delete_all()
    assert not r.exists("dead")


def test_dead_set_retry_decrements_like_sidekiq(r: redis.Redis, config: Config) -> None:
    r.zadd("dead", {SK8_RETRY: time.time()})
    [entry] = DeadSet(config).entries()
    assert entry.retry()
    job = loads(r.lindex("queue:default", 0))
    assert job["retry_count"] == -1  # Sidekiq: retry_count -= 1 whatever the set
    assert job["created_at"] == 1754000000123  # kept in the writer's unit


def test_reschedule_changes_the_score_only_while_present(r: redis.Redis,
                                                         config: Config) -> None:
    r.zadd("schedule", {RUBY_JOB: 10.0})
    [entry] = ScheduledSet(config).entries()
    assert entry.reschedule(20.5)
    assert r.zscore("schedule", RUBY_JOB) == 20.5
    r.zrem("schedule", RUBY_JOB)
    assert not entry.reschedule(30.0)
    assert r.zcard("schedule") == 0


# --- values no writer should store ----------------------------------------------
def test_sorted_sets_with_odd_scores_read_and_fetch(r: redis.Redis, config: Config) -> None:
    scores = [1e15, 1e300, float("inf"), float("-inf"), -1e20, -5.0]
    for cls in (RetrySet, ScheduledSet, DeadSet):
        sset = cls(config)
        r.zadd(sset.key, {job_with_times(f"s{i}", 1e300): s for i, s in enumerate(scores)})
        entries = sset.entries(0, 100)
        assert sorted(e.score for e in entries) == sorted(scores)
        assert all(e.record.failed_at is None for e in entries)
        for score in scores:
            [found] = sset.fetch(score)
            assert found.at == score
        assert len(list(sset.scan("HostileJob"))) == len(scores)
