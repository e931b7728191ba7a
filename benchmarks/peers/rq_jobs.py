"""The job functions RQ's workers import (``rq worker`` runs with this folder on PYTHONPATH).

One redis-py client per worker process (RQ's SimpleWorker runs one job at a time),
created at import from BENCH_REDIS_URL.
"""

from __future__ import annotations

import os
import time

import redis
import spanlog

R = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])  # set by peerkit.env_for
SPANS = spanlog.SpanLog()  # io: "start end" per job, one RPUSH every 20 ms


def noop() -> None:
    pass


def onecall(i: int) -> None:
    R.hincrby("bench:runs", str(i), 1)


def io() -> None:
    start = time.time()
    time.sleep(0.010)
    SPANS.add(start, time.time())


def lat(pushed_at: float) -> None:
    R.rpush("bench:lat", time.time() - pushed_at)


def probe() -> None:
    R.rpush("bench:probe", 1)
