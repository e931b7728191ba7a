"""Processors whose queues ran dry while their siblings still run jobs.

When a deep queue empties, each processor of the process finds nothing as it
finishes its last job. Going to Redis then (a fetch, then a blocking wait) costs
each one a wake-up and two round trips, and the GIL with them: at ``-c 100`` that
burst of a hundred threads delayed the last jobs still running, by 3-20 ms
(``docs/performance.md``, seventh pass). Instead, a processor that runs dry while
another processor already waits on Redis for the same queue *parks* here: it waits
in the process, without a round trip, until

- the processor waiting on Redis got a job (``found``): more may have come, so the
  parked ones fetch;
- every processor of the process is idle (parked or waiting on Redis): then each
  waits on Redis for its queue, as an idle process always has;
- ``limit_s`` passed, or the process quiets (``wake_all``).

Every queue keeps a processor waiting on Redis all along, so a job pushed to an
idle queue starts as soon as before.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class Parking:
    """Shared by the processors of one process (``processors`` of them)."""

    def __init__(self, processors: int) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._processors = processors
        self._parked = 0
        #: Processors waiting on Redis, per queue key.
        self._watching: Counter[str] = Counter()
        self._watchers = 0
        #: Bumped to release every parked processor.
        self._epoch = 0
        #: Processors parked on an event loop (``park_on_loop``), with their loop.
        self._futures: dict[asyncio.Future[None], asyncio.AbstractEventLoop] = {}

    def park(self, key: str, quiet: threading.Event, limit_s: float) -> bool:
        """Wait while siblings still run jobs and another processor waits on Redis
        for ``key``. Returns True if this processor waited."""
        with self._cond:
            if not self._may_park(key, quiet):
                return False
            epoch = self._epoch
            self._parked += 1
            try:
                self._cond.wait_for(lambda: self._epoch != epoch, limit_s)
            finally:
                self._parked -= 1
            return True

    def park_on_loop(self, key: str, quiet: threading.Event) -> asyncio.Future[None] | None:
        """``park`` for a stretch of async jobs on the event loop, whose thread then
        stays asleep: a future to await (with a time limit, then ``unpark`` it), or
        None if it should not wait."""
        loop = asyncio.get_running_loop()
        with self._cond:
            if not self._may_park(key, quiet):
                return None
            future: asyncio.Future[None] = loop.create_future()
            self._futures[future] = loop
            self._parked += 1
            return future

    def _may_park(self, key: str, quiet: threading.Event) -> bool:
        """Under the lock: whether a processor that ran dry on ``key`` waits here."""
        if quiet.is_set() or not self._watching[key]:
            return False
        if self._parked + 1 + self._watchers >= self._processors:
            self._release()  # this was the last busy processor: all go to Redis
            return False
        return True

    def unpark(self, future: asyncio.Future[None]) -> None:
        """After awaiting ``park_on_loop``'s future, whatever came of it."""
        with self._cond:
            if self._futures.pop(future, None) is not None:
                self._parked -= 1

    @contextmanager
    def watching(self, key: str) -> Iterator[None]:
        """Around a processor's blocking fetch on ``key``."""
        with self._cond:
            self._watching[key] += 1
            self._watchers += 1
            if self._parked and self._parked + self._watchers >= self._processors:
                self._release()
        try:
            yield
        finally:
            with self._cond:
                self._watching[key] -= 1
                self._watchers -= 1

    def found(self) -> None:
        """A processor waiting on Redis got a job: the parked ones fetch."""
        with self._cond:
            if self._parked:
                self._release()

    def wake_all(self) -> None:
        """The process quiets: nobody stays parked."""
        with self._cond:
            self._release()

    def _release(self) -> None:
        self._epoch += 1
        self._cond.notify_all()
        for future, loop in self._futures.items():
            with suppress(RuntimeError):  # its loop is closed: nobody awaits it
                loop.call_soon_threadsafe(_wake, future)
        self._parked -= len(self._futures)
        self._futures.clear()

    @property
    def parked(self) -> int:
        """Processors parked now."""
        with self._cond:
            return self._parked

    @property
    def watchers(self) -> int:
        """Processors waiting on Redis now."""
        with self._cond:
            return self._watchers


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
