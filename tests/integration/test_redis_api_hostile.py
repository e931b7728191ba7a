"""roadie.api reading values no writer should store, written straight into a real
Redis: scores and payload times past year 9999, infinite, negative, strings; process
and periodic hashes with ``inf``. Nothing raises; what is no time reads as None."""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
import redis

from roadie.api import DeadSet, ProcessSet, Queue, RetrySet, ScheduledSet, Stats, Workers, queues
from roadie.api.periodic import PeriodicSet
from roadie.config import Config
from roadie.keys import Keys

KEYS = Keys()
NOT_TIMES: list[Any] = [1e15, 1e300, -1e20, "yesterday", [1], {"a": 1}, True]


def job(jid: str, at: Any) -> bytes:
    return orjson.dumps({"class": "HostileJob", "args": [], "jid": jid, "queue": "default",
                         "enqueued_at": at, "created_at": at, "failed_at": at,
                         "retried_at": at})


def test_payload_times_that_are_no_time_read_as_none(r: redis.Redis, config: Config) -> None:
    r.lpush(KEYS.queue("default"), *[job(f"j{i}", at) for i, at in enumerate(NOT_TIMES)])
    r.sadd(KEYS.queues, "default")
    q = Queue("default", config)
    records = list(q)
    assert len(records) == len(NOT_TIMES)
    for record in records:
        assert (record.enqueued_at, record.created_at, record.failed_at,
                record.retried_at) == (None, None, None, None), record.raw
        assert record.latency() == 0.0
    # The next job to run has enqueued_at 1e15 (as ms, year 33658): no latency.
    assert q.latency() == 0.0
    assert [x.latency() for x in queues(config)] == [0.0]
    assert Stats(config).summary().default_queue_latency == 0.0


def test_sidekiq8_milliseconds_and_old_times_still_read(r: redis.Redis, config: Config) -> None:
    now_ms = int(time.time() * 1000)
    r.lpush(KEYS.queue("default"), job("ms", now_ms), job("before_1970", -5))
    [before, ms] = Queue("default", config).entries()
    assert ms.enqueued_at == now_ms / 1000
    assert before.enqueued_at == -5.0


def test_sorted_sets_with_odd_scores_read_and_fetch(r: redis.Redis, config: Config) -> None:
    scores = [1e15, 1e300, float("inf"), float("-inf"), -1e20, -5.0]
    for cls in (RetrySet, ScheduledSet, DeadSet):
        sset = cls(config)
        r.zadd(sset.key, {job(f"s{i}", 1e300): s for i, s in enumerate(scores)})
        entries = sset.entries(0, 100)
        assert sorted(e.score for e in entries) == sorted(scores)
        assert all(e.record.failed_at is None for e in entries)
        for score in scores:
            [found] = sset.fetch(score)
            assert found.at == score
        assert len(list(sset.scan("HostileJob"))) == len(scores)


def test_process_work_and_periodic_hashes_with_inf(r: redis.Redis, config: Config) -> None:
    r.sadd("processes", "p:1:a")
    r.hset("p:1:a", mapping={
        "info": json.dumps({"identity": "p:1:a", "started_at": 1e300, "hostname": "p"}),
        "busy": 1, "beat": "inf", "quiet": "false", "rss": "nan"})
    r.hset("p:1:a:work", "t1", orjson.dumps({"queue": "default", "run_at": 1e300,
                                             "payload": orjson.loads(job("w", "x"))}))
    [proc] = ProcessSet(config).processes()
    assert proc.beat == 0.0 and proc.started_at is None and proc.rss_kb == 0
    [work] = Workers(config).entries()
    assert work.run_at == 0.0 and work.jid == "w"
    r.hset(KEYS.periodic, "nightly", orjson.dumps({"cron": "0 3 * * *", "class": "Night"}))
    r.hset(KEYS.periodic_last, "nightly", "inf")
    [entry] = PeriodicSet(config).entries()
    assert entry.last_run_at is None and entry.next_run_at is not None
