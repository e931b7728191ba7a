"""Huey tasks of the benchmark, on RedisHuey (run: ``huey_consumer huey_jobs.huey``)."""

from __future__ import annotations

import os
import time

import redis
import spanlog
from huey import RedisHuey

#: Blocking dequeue (BRPOP, huey's default for Redis); results stored (default) for
#: tasks that return something: only ``noop`` does, so that its completions are counted.
huey = RedisHuey("bench", url=os.environ["BENCH_REDIS_URL"])

_client: redis.Redis | None = None


def client() -> redis.Redis:
    """One Redis client (a thread-safe connection pool) per consumer process."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    return _client


SPANS = spanlog.SpanLog()  # io: "start end" per job, one RPUSH every 20 ms


@huey.task()
def noop(i: int) -> bool:
    return True  # stored in huey.results.bench: huey's own record that the task ran


@huey.task()
def onecall(i: int) -> None:
    client().hincrby("bench:runs", str(i), 1)


@huey.task()
def sleep(i: int) -> None:
    started = time.time()
    time.sleep(0.01)
    SPANS.add(started, time.time())


@huey.task()
def lat(pushed_at: float) -> None:
    client().rpush("bench:lat", repr(time.time() - pushed_at))
