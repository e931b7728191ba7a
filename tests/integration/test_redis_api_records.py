"""roadie/api/records.py against a real Redis: a job record's times read from float
seconds, Sidekiq 8's milliseconds and times before 1970; a time no writer should store
(past year 9999, infinite, a string) reads as None, and its latency as 0."""

from __future__ import annotations

import time
from typing import Any

import redis
from integration_support import job_with_times

from roadie.api import Queue, Stats, queues
from roadie.config import Config
from roadie.keys import Keys

KEYS = Keys()


NOT_TIMES: list[Any] = [1e15, 1e300, -1e20, "yesterday", [1], {"a": 1}, True]


def test_payload_times_that_are_no_time_read_as_none(r: redis.Redis, config: Config) -> None:
    r.lpush(KEYS.queue("default"), *[job_with_times(f"j{i}", at) for i, at in enumerate(NOT_TIMES)])
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
    r.lpush(KEYS.queue("default"), job_with_times("ms", now_ms), job_with_times("before_1970", -5))
    [before, ms] = Queue("default", config).entries()
    assert ms.enqueued_at == now_ms / 1000
    assert before.enqueued_at == -5.0
