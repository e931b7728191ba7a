"""Jobs for ``benchmarks/core.py``; roadie processes load them with ``-r benchjobs``.

The Redis they write to is ``$BENCH_REDIS_URL`` (else ``$REDIS_URL``): the same
server the benchmark pushes to. Whoever imports this module sets one of them first
(core.child_env for roadie processes, the adapters and core.py for themselves).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import redis
from peers import spanlog

import roadie
from roadie.payload import epoch_seconds

#: Hash of job index -> number of times that job ran (OneCall).
RUNS_KEY = "bench:runs"
#: List of push->start latencies in seconds (Latency).
LATENCY_KEY = "bench:latency"
#: "start end" epoch seconds of each sleeping job (Sleep, AsyncSleep; spanlog.py).
IO_KEY = spanlog.IO_KEY
#: List of push->start latencies in seconds, push time given as argument (Lat; bench.py).
LAT_KEY = "bench:lat"

_client: redis.Redis | None = None
_lock = threading.Lock()

#: The client a user's job module makes for itself (OneCallOwn): one module-level
#: redis-py client, a thread-safe connection pool, as redis-py's docs show it. It
#: connects on first use, so making it at import costs nothing.
OWN_CLIENT = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL") or os.environ["REDIS_URL"])


def client() -> redis.Redis:
    """One thread-safe redis-py client (connection pool) per process."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                url = os.environ.get("BENCH_REDIS_URL") or os.environ["REDIS_URL"]
                _client = redis.Redis.from_url(url)
    return _client


SPANS = spanlog.SpanLog()  # I/O spans, written in batches


class Noop(roadie.Job, name="bench.Noop"):
    """Does nothing: what is left is roadie's own cost per job."""

    def perform(self, i: int) -> None:
        pass


class OneCall(roadie.Job, name="bench.OneCall"):
    """One Redis command: counts its runs per job index, so duplicates show.

    Uses ``roadie.redis_client()``, the thread's own connection that roadie's docs
    recommend to jobs that use Redis (the benchmark's Redis is the process's).
    """

    def perform(self, i: int) -> None:
        roadie.redis_client().hincrby(RUNS_KEY, str(i), 1)


class OneCallOwn(roadie.Job, name="bench.OneCallOwn"):
    """OneCall as a user writes it: through the job module's own ``OWN_CLIENT``.

    ``roadie.redis_client()`` lends a job the processor's own connection, which a user
    who made a client of their own does not get: each call then takes a connection
    from redis-py's pool and gives it back (a lock, and one connection per thread).
    """

    def perform(self, i: int) -> None:
        OWN_CLIENT.hincrby(RUNS_KEY, str(i), 1)


class OneCallPooled(roadie.Job, name="bench.OneCallPooled"):
    """OneCall through one redis-py client (a connection pool) shared by the threads."""

    def perform(self, i: int) -> None:
        client().hincrby(RUNS_KEY, str(i), 1)


class Latency(roadie.Job, name="bench.Latency"):
    """Records (start of perform - enqueued_at of its payload) in seconds."""

    def perform(self) -> None:
        started = time.time()
        enqueued = epoch_seconds(self.payload.get("enqueued_at"))
        if enqueued is not None:
            client().rpush(LATENCY_KEY, repr(started - enqueued))


class Sleep(roadie.Job, name="bench.Sleep"):
    """An I/O-bound job: a blocking 10 ms sleep; its start and end go to ``SPANS``."""

    def perform(self, i: int) -> None:
        started = time.time()
        time.sleep(0.01)
        SPANS.add(started, time.time())


class AsyncSleep(roadie.Job, name="bench.AsyncSleep"):
    """Sleep as ``async def``: ``await asyncio.sleep(0.01)``; start and end to ``SPANS``."""

    async def perform(self, i: int) -> None:
        started = time.time()
        await asyncio.sleep(0.01)
        SPANS.add(started, time.time())


class Lat(roadie.Job, name="bench.Lat"):
    """Records (start of perform - ``pushed_at``, the pusher's time.time()) in seconds."""

    def perform(self, pushed_at: float) -> None:
        roadie.redis_client().rpush(LAT_KEY, repr(time.time() - pushed_at))
