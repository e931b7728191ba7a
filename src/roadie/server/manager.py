"""The processors of one process: starts N, replaces one that dies, waits for them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from roadie.server.processor import Processor
from roadie.server.state import State

log = logging.getLogger("roadie")


class Manager:
    def __init__(self, concurrency: int, state: State, factory: Callable[[int], Processor],
                 deal: Callable[[list[Processor]], object] | None = None) -> None:
        self.concurrency = concurrency
        self.state = state
        self.factory = factory
        #: Called with the started processors before they may fetch: gives them
        #: their first jobs with one round trip (``processor.deal``).
        self.deal = deal
        self.processors: list[Processor] = []
        #: Set once every processor is started: they fetch only then (see
        #: ``Processor.gate``).
        self.started = threading.Event()
        self._supervisor = threading.Thread(
            target=self._supervise, name="roadie.manager", daemon=True
        )

    def start(self) -> None:
        self.processors = [self.factory(i) for i in range(self.concurrency)]
        for p in self.processors:
            p.start()
        if self.deal is not None:
            self.deal(self.processors)
        self.started.set()
        self._supervisor.start()

    def _supervise(self) -> None:
        while not self.state.quiet.wait(0.5):
            for i, p in enumerate(self.processors):
                if not p.thread.is_alive() and not self.state.quiet.is_set():
                    log.error("processor %s died; starting a new one", p.thread.name)
                    fresh = self.factory(i)
                    self.processors[i] = fresh
                    fresh.start()

    def busy(self) -> list[Processor]:
        return [p for p in self.processors if p.current is not None]

    def join(self, deadline: float) -> bool:
        """Wait until every processor has finished (after quiet), or the deadline.

        Returns True if all finished.
        """
        for p in list(self.processors):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            p.thread.join(remaining)
        return all(not p.thread.is_alive() for p in self.processors)
