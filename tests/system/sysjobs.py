"""Jobs that the system tests' ``roadie run`` processes load (``-r .../sysjobs.py``).

Every job records what it did in Redis (the database of the ``REDIS_URL`` it was
started with) so that a test can count runs and duplicates exactly:

* ``sys:runs``    hash jid -> number of times the job's body ran (HINCRBY)
* ``sys:events``  list of JSON events {"kind", "jid", "pid", "t", "crashes", ...}

Names are given explicitly so that the test process (which imports this module to
push) and the roadie processes agree on them whatever the module is called.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from typing import Any

import orjson
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

import roadie

RUNS = "sys:runs"
EVENTS = "sys:events"
#: Set this key to make every running (and future) ``Slow`` job finish at once.
RELEASE = "sys:release"

_lock = threading.Lock()
_client: redis.Redis | None = None


def rdb() -> redis.Redis:
    """The jobs' own client. It rides out a Redis restart: a job's record must not
    fail (and go to the retry set) because Redis was away for a second."""
    global _client
    with _lock:
        if _client is None:
            _client = redis.Redis.from_url(
                os.environ["REDIS_URL"],
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 200),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError,
                                redis.BusyLoadingError],
                socket_timeout=5.0,
                socket_connect_timeout=2.0,
            )
        return _client


def _event(job: roadie.Job, kind: str, **extra: Any) -> None:
    entry = {
        "kind": kind,
        "jid": job.jid,
        "pid": os.getpid(),
        "t": time.time(),
        "crashes": job.payload.get("roadie_crashes", 0),
        **extra,
    }
    rdb().rpush(EVENTS, orjson.dumps(entry))


def _count(job: roadie.Job) -> None:
    rdb().hincrby(RUNS, job.jid, 1)


class Record(roadie.Job, name="sys.Record"):
    """Counts its run; optionally takes ``ms`` milliseconds first."""

    def perform(self, ms: int = 0, *_ignored: Any) -> None:
        if ms:
            time.sleep(ms / 1000.0)
        _count(self)


class Stamp(roadie.Job, name="sys.Stamp"):
    """Counts its run and records when it ran (for scheduled jobs)."""

    def perform(self, label: str) -> None:
        _count(self)
        _event(self, "stamp", label=label)


class Slow(roadie.Job, name="sys.Slow"):
    """Runs ``seconds`` seconds, or until the ``sys:release`` key exists."""

    def perform(self, seconds: float) -> None:
        _count(self)
        _event(self, "start")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not rdb().exists(RELEASE):
            time.sleep(0.05)
        _event(self, "done")


class Fail(roadie.Job, name="sys.Fail"):
    def perform(self, message: str) -> None:
        _count(self)
        raise ValueError(message)


class FailNoRetry(roadie.Job, name="sys.FailNoRetry", retry=0):
    def perform(self, message: str) -> None:
        _count(self)
        raise ValueError(message)


class Crash(roadie.Job, name="sys.Crash"):
    """Takes its whole process down, as a segfault or the OOM killer would."""

    def perform(self) -> None:
        _count(self)
        _event(self, "crash")
        os.kill(os.getpid(), signal.SIGKILL)


class Innocent(roadie.Job, name="sys.Innocent"):
    """Counts its run and records it, with its crash count (it should stay 0)."""

    def perform(self) -> None:
        _count(self)
        _event(self, "ran")


class Exit(roadie.Job, name="sys.Exit"):
    """A poison job: ends its process at once, as a crash in C code would."""

    def perform(self) -> None:
        _count(self)
        _event(self, "exit")
        os._exit(1)


class HoldGIL(roadie.Job, name="sys.HoldGIL"):
    """The first run sleeps ``seconds`` in C *holding the GIL* (libc's sleep through
    ``ctypes.pythonapi``, a PyDLL: it does not release the GIL), so no other thread
    of the process runs meanwhile, signal handlers included. A recovered run (one
    crash counted) returns at once."""

    def perform(self, seconds: int) -> None:
        _count(self)
        _event(self, "gil-start")
        if not self.payload.get("roadie_crashes"):
            ctypes.pythonapi.sleep(int(seconds))
        _event(self, "gil-done")


# --- reading the records (test side) ------------------------------------------
def runs(r: redis.Redis) -> dict[str, int]:
    """jid -> number of runs."""
    return {k.decode(): int(v) for k, v in r.hgetall(RUNS).items()}


def events(r: redis.Redis, kind: str | None = None) -> list[dict[str, Any]]:
    out = [orjson.loads(raw) for raw in r.lrange(EVENTS, 0, -1)]
    return [e for e in out if kind is None or e["kind"] == kind]
