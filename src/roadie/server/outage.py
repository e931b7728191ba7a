"""Redis outages: log once when Redis goes away, once when it comes back.

Every loop that talks to Redis reports here instead of logging each failure, so
an outage of a minute gives two log lines, not thousands.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from roadie.connection import FailoverError

log = logging.getLogger("roadie")

#: Errors that mean "Redis is not reachable right now", worth waiting out. A failover
#: gives several: the dead primary refuses connections; the sentinels name no primary
#: until they agree (redis-py's ``MasterNotFoundError``, a ``ConnectionError``); a
#: demoted primary answers ``READONLY`` (``ReadOnlyError``) or cuts blocked commands
#: short (``UNBLOCKED``); a primary short of replicas answers ``NOREPLICAS``
#: (``FailoverError``, see ``roadie.connection``). All of them pass within seconds.
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
)


class Outage:
    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._down_since: float | None = None
        #: When the last outage ended (monotonic), or None if there was none.
        self.recovered_at: float | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, exc: BaseException, where: str) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.error(
                    "Redis at %s is unreachable (%s: %s, in %s); retrying with backoff, "
                    "running jobs keep going",
                    self.url, type(exc).__name__, exc, where,
                )

    def ok(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is not None:
                self.recovered_at = time.monotonic()
                gone = self.recovered_at - self._down_since
                self._down_since = None
                log.warning("Redis at %s is back after %.1f s", self.url, gone)


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
