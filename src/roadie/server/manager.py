"""The processors of one process, through their life: started together, replaced
when one dies, their held acknowledgements flushed, and at a hard stop their jobs
taken back and their runs ended."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from roadie.server.fetch import Fetcher, UnitOfWork, fetch_order
from roadie.server.native import interrupt
from roadie.server.outage import TRANSIENT
from roadie.server.processor import Processor
from roadie.server.state import State
from roadie.server.supply.acks import ACK_DELAY_S
from roadie.server.supply.supply import Supply

log = logging.getLogger("roadie")

#: How often the manager checks that every processor's thread is alive.
SUPERVISE_EVERY_S = 0.5


@dataclass
class HardStop:
    """What a hard stop took back from the processors still running jobs."""

    #: The jobs they were running (pushed back, unless told otherwise).
    running: list[UnitOfWork] = field(default_factory=list)
    #: How many of those were pushed back to the front of their queues.
    requeued: int = 0


class Manager:
    def __init__(self, concurrency: int, state: State, fetcher: Fetcher,
                 factory: Callable[[int], Processor],
                 deal: Callable[[list[Processor]], object] | None = None) -> None:
        self.concurrency = concurrency
        self.state = state
        #: The launcher's pooled fetcher: writes for several processors at once.
        self.fetcher = fetcher
        self.factory = factory
        #: Called with the started processors before they may fetch: gives them
        #: their first jobs with one round trip (``supply/deal.py``).
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

    def supplies(self) -> list[Supply]:
        """Every processor's supply, in order (a processor steals from the others)."""
        return [p.supply for p in self.processors]

    def _supervise(self) -> None:
        while not self.state.quiet.wait(SUPERVISE_EVERY_S):
            for i, p in enumerate(self.processors):
                if not p.thread.is_alive() and not self.state.quiet.is_set():
                    log.error("processor %s died; starting a new one", p.thread.name)
                    fresh = self.factory(i)
                    self.processors[i] = fresh
                    fresh.start()

    def busy(self) -> list[Processor]:
        return [p for p in self.processors if p.current is not None]

    def held(self) -> set[bytes]:
        """Raws of every job the processors hold (fetched, not acknowledged)."""
        held: set[bytes] = set()
        for p in self.processors:
            held.update(p.supply.held())
        return held

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

    def flush_acks(self, older_than: float = ACK_DELAY_S) -> int:
        """Write the acknowledgements processors have held for ``older_than`` s.

        A processor acknowledges its successes with its next fetch; while it runs a
        long job after quick ones of the same batch, this (the launcher's main loop,
        ten times a second) writes them, so finished jobs do not stay in flight.
        """
        taken = [(p, acks) for p in self.processors if (acks := p.supply.acks.take(older_than))]
        if not taken:
            return 0
        every = fetch_order(acks for _, acks in taken)
        try:
            self.fetcher.ack_many(every)  # one round trip for all the processors
        except TRANSIENT:
            for p, acks in taken:
                p.supply.acks.restore(acks)  # each processor's next fetch carries its own
            return 0
        return len(every)

    def hard_stop(
        self, leave_running: Callable[[list[UnitOfWork]], None] | None = None
    ) -> HardStop:
        """The stop's timeout passed: take every busy processor's jobs back, write
        nothing more for them, and end their runs.

        Their held acknowledgements are written, their unstarted jobs go back to the
        front of their queues, and so do the jobs they run, unless
        ``leave_running`` is given: it is called with them instead (they stay in
        flight, for the janitor).
        Only then are those runs interrupted, so that none finishes after another
        process took its job (which would run it twice). Raises a ``TRANSIENT``
        error if Redis does not take the writes: the runs go on then, and the
        janitor of another process recovers the jobs after this one exits.
        """
        busy = self.busy()
        stop = HardStop()
        unstarted: list[UnitOfWork] = []
        acks: list[list[bytes]] = []
        for p in busy:
            p.abandoned.set()
            # Jobs fetched with the running one and not started go back too, behind
            # it (oldest last, so that it lands at the front of its queue).
            unstarted.extend(p.supply.take_batch()[::-1])
            current = p.current
            if current is not None:
                stop.running.append(current)
            # Its earlier successes, not acknowledged yet: it writes nothing now.
            acks.append(p.supply.acks.take())
        self.fetcher.ack_many(fetch_order(acks))
        self.fetcher.requeue(unstarted)
        if leave_running is None:
            stop.requeued = self.fetcher.requeue(stop.running)
        elif stop.running:
            leave_running(stop.running)
        for p in busy:
            interrupt(p.thread)
        return stop
