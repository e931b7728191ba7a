"""Jobs that the fault suite's ``roadie run`` processes load (``-r .../faultjobs.py``).

Every job counts what it did in Redis so that a test can draw an exact account:

* ``faults:starts`` hash jid -> runs begun
* ``faults:runs``   hash jid -> runs finished (the body reached its end)
* ``faults:events`` list of JSON events (GIL measurements, long-job ticks)

The counting write is ``HINCRBY`` made idempotent with a per-run token (``count.lua``
below): the jobs' own client retries across Redis outages, and a retried HINCRBY whose
first reply was lost would otherwise count one run twice and fake a duplicate.

The jobs write to ``FAULTS_REDIS_URL`` when it is set (the test's direct line to
Redis, around the TCP proxy that the roadie processes go through), else to
``REDIS_URL``: the accounting must not be what the faults break.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from typing import Any

import orjson
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

import roadie

STARTS = "faults:starts"
RUNS = "faults:runs"
EVENTS = "faults:events"
TOKENS = "faults:tokens"
#: Hash jid -> pid, written just before a ``Hog`` job grabs the GIL.
HOGGING = "faults:hogging"

# Count once per (run, hash) token, however often the write is retried.
COUNT_LUA = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  return redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
end
return -1
"""

_lock = threading.Lock()
_client: redis.Redis | None = None


def rdb() -> redis.Redis:
    """The jobs' own client; it rides out outages of up to about a minute."""
    global _client
    with _lock:
        if _client is None:
            url = os.environ.get("FAULTS_REDIS_URL") or os.environ["REDIS_URL"]
            _client = redis.Redis.from_url(
                url,
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 150),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError,
                                redis.BusyLoadingError],
                socket_timeout=3.0,
                socket_connect_timeout=2.0,
            )
        return _client


def _count(key: str, jid: str, token: str) -> None:
    rdb().eval(COUNT_LUA, 2, TOKENS, key, f"{token}:{key}", jid)


def event(kind: str, jid: str, **extra: Any) -> None:
    entry = {"kind": kind, "jid": jid, "pid": os.getpid(), "t": time.time(), **extra}
    rdb().rpush(EVENTS, orjson.dumps(entry))


class Count(roadie.Job, name="faults.Count"):
    """Counts its start and its end; takes ``ms`` milliseconds in between."""

    def perform(self, ms: int = 0) -> None:
        token = uuid.uuid4().hex
        _count(STARTS, self.jid, token)
        if ms:
            time.sleep(ms / 1000.0)
        _count(RUNS, self.jid, token)


class Long(roadie.Job, name="faults.Long"):
    """Runs ``seconds`` seconds (sleeping: other threads run meanwhile)."""

    def perform(self, seconds: float) -> None:
        token = uuid.uuid4().hex
        _count(STARTS, self.jid, token)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
        _count(RUNS, self.jid, token)


def _hog_n(seconds: float) -> int:
    """How many integers ``sum(range(n))`` adds in about ``seconds`` here."""
    n = 20_000_000
    t0 = time.perf_counter()
    sum(range(n))
    per = max(time.perf_counter() - t0, 1e-6) / n
    # Aim a little high: the measurement is noisy on a busy machine.
    return int(1.3 * seconds / per)


class Hog(roadie.Job, name="faults.Hog"):
    """Holds the GIL for about ``seconds``: ``sum(range(n))`` is one C call that never
    lets another thread run. A ticker thread measures the starvation: its largest gap
    between two ticks is recorded in a ``hog`` event."""

    def perform(self, seconds: float) -> None:
        token = uuid.uuid4().hex
        _count(STARTS, self.jid, token)
        n = _hog_n(seconds)
        ticks: list[float] = []
        done = threading.Event()

        def tick() -> None:
            while not done.is_set():
                ticks.append(time.monotonic())
                time.sleep(0.01)

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        time.sleep(0.1)  # let it tick freely first
        rdb().hset(HOGGING, self.jid, os.getpid())
        t0 = time.monotonic()
        sum(range(n))
        held = time.monotonic() - t0
        time.sleep(0.1)
        done.set()
        ticker.join()
        gap = max((b - a for a, b in itertools.pairwise(ticks)), default=0.0)
        event("hog", self.jid, held=held, max_gap=gap)
        _count(RUNS, self.jid, token)
