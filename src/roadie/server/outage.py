"""Redis outages: log once when Redis goes away, once when it comes back.

Every loop that talks to Redis reports here instead of logging each failure, so
an outage of a minute gives two log lines, not thousands.

Two refusals are waited out the same way, each with its own pair of lines: a **full**
Redis (over ``maxmemory`` with ``noeviction``: it refuses every write that may use
memory) and a **denied** command (the ACL user lacks a permission). Neither loses a
job or runs one twice: a job whose outcome write is refused stays in flight while
the write is tried again. A full Redis still drains: fetching, acknowledging and
moving jobs between roadie's lists use no memory, and roadie's scripts are written so
that Redis runs them while full (see ``lua/fetch.lua``).
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from roadie.redis.connection import FailoverError

log = logging.getLogger("roadie")

#: Writes that Redis refuses until an operator acts: it is full, or the ACL user
#: lacks a permission. Waited out like an outage (``Outage.failed``).
REFUSED = (redis.exceptions.OutOfMemoryError, redis.exceptions.NoPermissionError)

#: Errors worth waiting out. "Redis is not reachable right now": a failover gives
#: several: the dead primary refuses connections; the sentinels name no primary
#: until they agree (redis-py's ``MasterNotFoundError``, a ``ConnectionError``); a
#: demoted primary answers ``READONLY`` (``ReadOnlyError``) or cuts blocked commands
#: short (``UNBLOCKED``); a primary short of replicas answers ``NOREPLICAS``
#: (``FailoverError``, see ``roadie.redis.connection``). All of them pass within seconds.
#: And the ``REFUSED`` writes, which pass when memory is freed or the ACL fixed.
TRANSIENT = (
    redis.ConnectionError,
    FailoverError,
    redis.TimeoutError,
    redis.BusyLoadingError,
    redis.exceptions.TryAgainError,
    redis.ReadOnlyError,
    ConnectionError,
    TimeoutError,
    OSError,
    *REFUSED,
)

class Outage:
    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._full_since: float | None = None
        #: Where a command was denied (ACL), and since when.
        self._denied: dict[str, float] = {}
        #: When the last outage ended (monotonic), or None if there was none.
        self.recovered_at: float | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    @property
    def full(self) -> bool:
        """Redis refused a write for memory, and has accepted none since."""
        return self._full_since is not None

    def failed(self, exc: BaseException, where: str) -> None:
        if isinstance(exc, redis.exceptions.OutOfMemoryError):
            self._now_full(where)
            return
        if isinstance(exc, redis.exceptions.NoPermissionError):
            self._now_denied(exc, where)
            return
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.error(
                    "Redis at %s is unreachable (%s: %s, in %s); retrying with backoff, "
                    "running jobs keep going",
                    self.url, type(exc).__name__, exc, where,
                )

    def ok(self, where: str | None = None) -> None:
        """A command got through (in ``where``): Redis is reachable."""
        if self._denied and where is not None and where in self._denied:
            with self._lock:
                since = self._denied.pop(where, None)
            if since is not None:
                log.warning("Redis at %s allows the commands of the %s again, after %.1f s",
                            self.url, where, time.monotonic() - since)
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is not None:
                self.recovered_at = time.monotonic()
                gone = self.recovered_at - self._down_since
                self._down_since = None
                log.warning("Redis at %s is back after %.1f s", self.url, gone)

    def wrote(self) -> None:
        """A write that Redis refuses when full got through: it has memory again."""
        self.ok()
        if self._full_since is None:
            return
        with self._lock:
            if self._full_since is not None:
                gone = time.monotonic() - self._full_since
                self._full_since = None
                log.warning("Redis at %s accepts new writes again, after %.1f s full",
                            self.url, gone)

    def _now_full(self, where: str) -> None:
        with self._lock:
            if self._full_since is not None:
                return
            self._full_since = time.monotonic()
        log.error(
            "Redis at %s is full (used memory over maxmemory, in %s): it refuses new "
            "jobs, heartbeats and new retries. Running jobs go on and their outcomes "
            "are written; jobs keep being fetched, which frees memory. Raise maxmemory "
            "(CONFIG SET maxmemory), free memory, or add processes to drain the queues "
            "(docs/deployment.md, 'When Redis is full')",
            self.url, where,
        )

    def _now_denied(self, exc: BaseException, where: str) -> None:
        with self._lock:
            if where in self._denied:
                return
            self._denied[where] = time.monotonic()
        log.error(
            "Redis at %s denied a command of the %s (%s); retrying with backoff, and no "
            "job is lost or run again meanwhile. Grant the ACL user the commands and "
            "keys roadie needs (roadie check lists them)",
            self.url, where, exc,
        )


class Backoff:
    """Growing waits (0.1 s doubling to ``cap_s``), reset after a success."""

    def __init__(self, cap_s: float = 5.0) -> None:
        self.cap_s = cap_s
        self.next_s = 0.1

    def wait(self, stop: threading.Event) -> bool:
        """Sleep (waking early if ``stop`` is set); return True if stopped."""
        delay = self.next_s
        self.next_s = min(self.cap_s, self.next_s * 2)
        return stop.wait(delay)

    def reset(self) -> None:
        self.next_s = 0.1
