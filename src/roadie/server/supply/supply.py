"""One processor's supply of jobs: what it takes next, and where its successes'
acknowledgements go. Every fetch policy is here, behind ``take``; the processor
only runs what it is given.

``take`` tries, in order:

1. the processor's **batch**: jobs an earlier fetch took with the one it ran;
2. when the queues are running dry, a sibling's unstarted job (**steal**), or a wait
   in the process while a sibling waits on Redis for the same queue (**park**);
3. a **fetch** of up to ``batch_size()`` jobs, the pending acknowledgements riding
   on the same round trip (**deferred ack**);
4. a **blocking fetch** on one queue (``BLMOVE``), the queues taken in turn.

While the last jobs of a batch run, the event loop may fetch the next one
(**refill**, ``loopfetch.py``). ``roadie.speedups`` lists each mechanism and its
switch. Every job taken is in the process's in-flight list until its outcome is
written, whichever processor runs it: a kill -9 loses none.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from roadie.config import BLOCK_TIMEOUT_S, Config
from roadie.server.fetch import Fetcher, UnitOfWork
from roadie.server.outage import TRANSIENT, Outage
from roadie.server.outcome import Outcomes
from roadie.server.pace import Pace
from roadie.server.state import State
from roadie.server.supply.acks import PendingAcks
from roadie.server.supply.parking import Parking

#: Most jobs one processor fetches at once (when the queue is deep enough).
MAX_BATCH = 10

#: About how much work (in seconds, from its recent jobs' durations) a processor
#: takes at once: jobs under 10 ms come in full batches (one round trip for up to
#: MAX_BATCH), jobs of 100 ms or more one at a time, so that no processor holds slow
#: jobs that an idle processor could be running. (Fetching 10 ms jobs one at a time
#: cost more CPU in round trips than it won in balance: benchmarks/bench.py, I/O.)
HOLD_S = 0.1

#: Sync jobs of at least this length (a processor's steady average) get the next
#: batch fetched on the event loop while the last jobs of a batch run
#: (``before_sync_job``). Shorter ones fetch on their thread: they end before the
#: loop's fetch would arrive, and the hand-off would cost them more than it saves
#: (one-call jobs at -c 10, whose runs stretch to 2 ms while their threads wait for
#: the GIL, lost about 10 % with a 2 ms threshold).
PREFETCH_MIN_S = 0.005

#: Longest a processor waits for such a fetch to arrive before fetching itself.
REFILL_WAIT_S = 1.0


class LoopRefills(Protocol):
    """What a supply asks of the event loop's fetcher (``loopfetch.LoopFetcher``)."""

    def warm_soon(self) -> None: ...

    def refill_soon(self, supply: Supply, want: int, done: threading.Event) -> None: ...

    async def refill(self, supply: Supply, want: int) -> bool: ...


class Supply:
    """The jobs of one processor: the one it runs, the ones fetched with it, and
    the acknowledgements it holds. Its siblings may take from its batch (``steal``);
    the event loop fills it (``loopfetch``); the manager takes from it at a hard
    stop. Each deque pop is atomic, so a job goes to exactly one processor."""

    def __init__(
        self,
        index: int,
        *,
        config: Config,
        fetcher: Fetcher,
        state: State,
        outage: Outage,
        pace: Pace,
        abandoned: threading.Event,
        siblings: Callable[[], Sequence[Supply]] | None = None,
        loop_fetch: LoopRefills | None = None,
        parking: Parking | None = None,
    ) -> None:
        self.index = index
        self.config = config
        self.fetcher = fetcher
        self.state = state
        self.outage = outage
        self.pace = pace
        #: Set at a hard stop, once the manager took this supply's jobs: it takes
        #: nothing more.
        self.abandoned = abandoned
        #: The supplies of the process's other processors (``steal``).
        self.siblings = siblings
        #: Fetches on the event loop (the process's, shared); None: the thread fetches.
        self.loop_fetch = loop_fetch
        #: Where a processor waits when the queues run dry while its siblings still
        #: run jobs (the process's, shared); None: it goes to Redis at once.
        self.parking = parking
        #: The job handed out last, until the processor is done with it.
        self.current: UnitOfWork | None = None
        #: Jobs fetched together with ``current`` and not started yet.
        self.batch: deque[UnitOfWork] = deque()
        self.acks = PendingAcks()
        #: Most jobs one fetch takes; 1 turns batching off. A processor takes more
        #: than one only from a queue holding ``concurrency`` jobs per job taken.
        self.max_batch = min(MAX_BATCH, max(1, 1000 // max(1, config.concurrency))) if (
            config.speedup("batch")) else 1
        # Speed switches (``roadie.speedups``), read once.
        self._steals = config.speedup("steal")
        self._refills = config.speedup("refill")
        self._defers_acks = config.speedup("deferred_ack")
        nq = len(fetcher.queue_keys)
        # Idle processors block on the queues in turn, so that every queue has a
        # waiter and a job pushed to any of them starts at once.
        self._block_keys = [fetcher.queue_keys[(index + i) % nq] for i in range(nq)]
        self.block_timeout_s = BLOCK_TIMEOUT_S if config.concurrency >= nq else min(
            BLOCK_TIMEOUT_S, max(0.05, 1.0 / nq)
        )
        # With at least one processor per queue, processor i always waits on queue
        # i mod n: every queue keeps a waiter. With fewer, a processor moves to the
        # next queue only after a wait that timed out.
        self._rotate = config.concurrency < nq
        self._turn = 0
        #: The last fetch took fewer jobs than it asked for: the queues are running
        #: dry, so jobs waiting in siblings' batches go first (no round trip).
        self._draining = False
        #: Parked on the event loop already, while its async jobs ended.
        self._parked_on_loop = False
        #: Set when the loop's fetch for this batch is over (none pending).
        self._refilled = threading.Event()
        self._refilled.set()

    # --- what the processor asks ------------------------------------------------
    def take(self) -> UnitOfWork | None:
        """The next job for this processor's thread (it becomes ``current``), or
        None when a wait ended without one. May block up to a blocking fetch's
        timeout; raises ``TRANSIENT`` errors for the processor to wait out."""
        uow = self._next()
        if uow is not None:
            self.current = uow
        return uow

    def succeeded(self, uow: UnitOfWork, outcomes: Outcomes) -> None:
        """``uow`` succeeded: hold its acknowledgement for the next fetch."""
        if self._defers_acks:
            self.acks.add(uow.raw)
        else:
            outcomes.succeeded(uow)  # at once, on this thread (or the loop's)

    def put_back(self, uow: UnitOfWork) -> None:
        """``uow`` was taken but not started: it is the next job taken."""
        self.batch.appendleft(uow)
        self.current = None

    def before_sync_job(self) -> None:
        """Before a sync job runs, the last but one of its batch: if jobs are long
        enough, have the loop fetch the next batch meanwhile (**refill**). At ``-c
        100`` a thread's own fetch between two jobs took several ms, waiting for the
        GIL among 100 threads."""
        fetcher = self.loop_fetch
        if (fetcher is None or not self._refills or self.pace.job_steady_s < PREFETCH_MIN_S
                or self.state.quiet.is_set()):
            return
        if len(self.batch) > 1 or not self._refilled.is_set():
            fetcher.warm_soon()  # so that the first such fetch finds the loop ready
            return
        # One job still waits after this one: the fetch has two jobs' time to arrive
        # (among 100 busy threads the loop may wait several ms for the GIL).
        self._refilled.clear()
        fetcher.refill_soon(self, self.batch_size(), self._refilled)

    def finish(self, outcomes: Outcomes) -> None:
        """The processor's loop ended (quiet): acknowledge, push back what was not
        started."""
        self._refilled.wait(REFILL_WAIT_S)  # what a fetch under way takes goes back too
        acks = self.acks.take()
        if acks:
            outcomes.acknowledge(acks)
        # Oldest last: it lands at the very front of its queue.
        outcomes.requeue(self.take_batch()[::-1])

    def held(self) -> list[bytes]:
        """Raws of the jobs this supply holds (fetched, not yet acknowledged).

        Read from another thread (the janitor): each piece is copied at once.
        """
        current = self.current
        return [*(() if current is None else (current.raw,)),
                *[u.raw for u in list(self.batch)], *list(self.acks.raws)]

    def take_batch(self) -> list[UnitOfWork]:
        """Empty the batch, oldest first. Safe against a sibling stealing at the
        same time: each job ends up in one place."""
        taken: list[UnitOfWork] = []
        while True:
            try:
                taken.append(self.batch.popleft())
            except IndexError:
                return taken

    def batch_size(self) -> int:
        """How many jobs the next fetch may take: about HOLD_S of work."""
        job_s = self.pace.job_s
        if job_s * self.max_batch <= HOLD_S:
            return self.max_batch
        return max(1, int(HOLD_S / job_s))

    def note_fetched(self, got: int, wanted: int) -> None:
        """A fetch for this supply took ``got`` of ``wanted`` jobs."""
        self._draining = got < wanted

    # --- what the event loop's side asks (``stretch.py``) -----------------------
    def take_at_hand(self) -> UnitOfWork | None:
        """The next job without a round trip: from the batch, or from a sibling's
        while the queues run dry; it becomes ``current`` (None if there is none)."""
        try:
            uow: UnitOfWork | None = self.batch.popleft()
        except IndexError:
            uow = self._steal() if self._draining else None
        self.current = uow
        return uow

    def prefetch(self) -> None:
        """From the processor's thread, at the loop's request: fetch the next batch
        while the loop runs the last job of this one."""
        if self.batch or self.abandoned.is_set() or self.state.quiet.is_set():
            return
        try:
            got = self._fetch()
        except TRANSIENT as exc:
            self.outage.failed(exc, "fetch")  # the loop goes on; the next fetch retries
            return
        self.outage.ok()
        self.batch.extend(got)

    async def refill_on_loop(self) -> bool:
        """On the loop, while the last jobs of the batch run: fetch the next batch
        there, so that the thread does not wake up for it. False when the thread
        must fetch (``prefetch``): no loop fetcher, or it failed."""
        if len(self.batch) > 1 or self.abandoned.is_set() or self.state.quiet.is_set():
            return True
        return self.loop_fetch is not None and await self.loop_fetch.refill(
            self, self.batch_size())

    async def park_on_loop(self) -> None:
        """``park`` without waking the processor's thread: at the end of a drain,
        100 threads waking as their stretches ran dry delayed the async jobs still
        running on the loop. The thread then fetches without parking again."""
        parking = self.parking
        if parking is None:
            return
        future = parking.park_on_loop(self._block_key(), self.state.quiet)
        if future is None:
            return
        self._parked_on_loop = True
        try:
            await asyncio.wait_for(future, self.block_timeout_s)
        except TimeoutError:
            pass
        finally:
            parking.unpark(future)

    # --- how ------------------------------------------------------------------------
    def _next(self) -> UnitOfWork | None:
        if not self.batch and not self._refilled.is_set():
            self._refilled.wait(REFILL_WAIT_S)  # the loop's fetch for us is under way
        if self.batch:
            return self.batch.popleft()
        if self._draining:
            stolen = self._steal()
            if stolen is not None:
                return stolen
            if self._parked_on_loop:
                self._parked_on_loop = False  # parked already, while its jobs ended
            elif self._park() and self.state.quiet.is_set():
                return None
        got = self._fetch()
        if got:
            self.batch.extend(got[1:])
            return got[0]
        stolen = self._steal()
        if stolen is not None:
            return stolen
        return self._wait_for_one()

    def _wait_for_one(self) -> UnitOfWork | None:
        """Every queue is empty: wait on one of them in Redis."""
        key = self._block_key()
        if self.outage.full:
            # Redis refuses a blocking fetch (BLMOVE may use memory) while full, but
            # runs fetch.lua: wait as long as a blocking fetch would, then fetch again.
            self.state.quiet.wait(self.block_timeout_s)
            return None
        if key in self.state.paused:
            # Never block on a paused queue: wait as long as a blocking fetch would.
            self.state.quiet.wait(self.block_timeout_s)
            if self._rotate:
                self._turn += 1
            return None
        parking = self.parking
        if parking is None:
            uow = self.fetcher.fetch_blocking(key, self.block_timeout_s)
        else:
            with parking.watching(key):
                uow = self.fetcher.fetch_blocking(key, self.block_timeout_s)
            if uow is not None:
                parking.found()
        if uow is None and self._rotate:
            self._turn += 1
        return uow

    def _block_key(self) -> str:
        """The queue this processor waits on when every queue is empty."""
        return self._block_keys[self._turn % len(self._block_keys)]

    def _park(self) -> bool:
        """The queues ran dry: wait in the process while siblings still run jobs
        and another processor waits on Redis for this one's queue (``parking.py``)."""
        if self.parking is None:
            return False
        return self.parking.park(self._block_key(), self.state.quiet, self.block_timeout_s)

    def _fetch(self) -> list[UnitOfWork]:
        """Up to ``batch_size()`` jobs, without blocking; the pending
        acknowledgements ride on the same round trip."""
        acks = self.acks.take()
        try:
            want = self.batch_size()
            got = self.fetcher.fetch(want, acks=acks, skip=self.state.paused,
                                     share=self.config.concurrency)
        except BaseException:
            # Removing a job from the in-flight list twice is harmless: try again.
            self.acks.restore(acks)
            raise
        self._draining = len(got) < want
        return got

    def _steal(self) -> UnitOfWork | None:
        """The oldest unstarted job of the next sibling that holds one, if any.

        The queues are (nearly) empty, and jobs fetched in batches wait behind
        their siblings' running jobs: this idle processor runs one of them now. A
        job stays in the process's in-flight list whichever processor runs it.
        """
        if self.siblings is None or not self._steals or self.state.quiet.is_set():
            return None
        siblings = self.siblings()
        n = len(siblings)
        for i in range(self.index + 1, self.index + n):
            batch = siblings[i % n].batch
            if batch:
                try:
                    return batch.popleft()
                except IndexError:  # its owner took it meanwhile
                    continue
        return None
