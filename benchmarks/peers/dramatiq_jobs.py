"""Dramatiq's actors for the benchmark (the module ``dramatiq dramatiq_jobs`` loads).

The broker is Dramatiq's RedisBroker on BENCH_REDIS_URL, with its default middleware
plus AsyncIO (for the ``async def`` actor of io-async). The job bodies use one
module-level redis-py client per worker process, shared by its threads (redis-py's
connection pool is thread-safe). ``lat`` and ``probe`` have one actor per queue
(default, a, b, c), since a Dramatiq actor belongs to one queue.
"""

from __future__ import annotations

import asyncio
import os
import time

import dramatiq
import redis
import spanlog
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

URL = os.environ["BENCH_REDIS_URL"]  # set by the adapter (peerkit.env_for)
broker = RedisBroker(url=URL)
broker.add_middleware(AsyncIO())
dramatiq.set_broker(broker)
R = redis.Redis.from_url(URL)
SPANS = spanlog.SpanLog()  # io/aio: "start end" per job, one RPUSH every 20 ms
QUEUES = ("default", "a", "b", "c")


@dramatiq.actor(max_retries=0)
def noop() -> None:
    pass


@dramatiq.actor(max_retries=0)
def onecall(i: int) -> None:
    R.hincrby("bench:runs", str(i), 1)


@dramatiq.actor(max_retries=0)
def io() -> None:
    start = time.time()
    time.sleep(0.010)
    SPANS.add(start, time.time())


@dramatiq.actor(max_retries=0)
async def aio() -> None:
    start = time.time()
    await asyncio.sleep(0.010)
    SPANS.add(start, time.time())


def _lat(pushed_at: float) -> None:
    R.rpush("bench:lat", time.time() - pushed_at)


def _probe() -> None:
    R.rpush("bench:probe", 1)


LAT = {q: dramatiq.actor(_lat, actor_name=f"lat_{q}", queue_name=q, max_retries=0)
       for q in QUEUES}
PROBE = {q: dramatiq.actor(_probe, actor_name=f"probe_{q}", queue_name=q, max_retries=0)
         for q in QUEUES}
