"""One processor: a thread looping fetch -> decode -> middleware -> perform -> outcome."""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence

from roadie import payload as pl
from roadie.config import BLOCK_TIMEOUT_S, Config
from roadie.current import lend_thread_client
from roadie.keys import Keys
from roadie.log import tid as make_tid
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.asyncloop import AsyncRunner, Pending
from roadie.server.fetch import Fetcher, UnitOfWork
from roadie.server.idle import IdleLanes
from roadie.server.loopfetch import LoopFetcher, deal_out
from roadie.server.outage import TRANSIENT, Backoff, Outage
from roadie.server.outcome import Outcomes
from roadie.server.state import State
from roadie.server.stretch import LoopLane

log = logging.getLogger("roadie")

#: Longest a processor waits for its siblings to be started before it fetches.
GATE_TIMEOUT_S = 5.0

#: Most jobs one processor fetches at once (when the queue is deep enough).
MAX_BATCH = 10

#: Longest a succeeded job waits for its acknowledgement to ride on a fetch.
ACK_DELAY_S = 0.05

#: About how much work (in seconds, from its recent jobs' durations) a processor
#: takes at once: jobs under 10 ms come in full batches (one round trip for up to
#: MAX_BATCH), jobs of 100 ms or more one at a time, so that no processor holds slow
#: jobs that an idle processor could be running. (Fetching 10 ms jobs one at a time
#: cost more CPU in round trips than it won in balance: benchmarks/bench.py, I/O.)
HOLD_S = 0.1

#: Sync jobs of at least this length (a processor's steady average) get the next
#: batch fetched on the event loop while the last jobs of a batch run
#: (``_refill_soon``). Shorter ones fetch on their thread: they end before the
#: loop's fetch would arrive, and the hand-off would cost them more than it saves
#: (one-call jobs at -c 10, whose runs stretch to 2 ms while their threads wait for
#: the GIL, lost about 10 % with a 2 ms threshold).
PREFETCH_MIN_S = 0.005

#: Longest a processor waits for such a fetch to arrive before fetching itself.
REFILL_WAIT_S = 1.0


class Processor(LoopLane):
    def __init__(
        self,
        index: int,
        *,
        config: Config,
        keys: Keys,
        fetcher: Fetcher,
        state: State,
        hooks: Hooks,
        registry: Registry,
        outage: Outage,
        async_runner: Callable[[], AsyncRunner],
        siblings: Callable[[], Sequence[Processor]] | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.index = index
        self.config = config
        self.keys = keys
        self.fetcher = fetcher
        self.state = state
        self.hooks = hooks
        self.registry = registry
        self.outage = outage
        self.async_runner = async_runner
        #: The processors of this process, whose unstarted jobs this one may take
        #: when the queues are empty (they are all in the process's in-flight list).
        self.siblings = siblings
        #: Set when all the processors of the process exist: they start fetching
        #: together. A process starting on a deep queue otherwise has its first
        #: processors running jobs, and holding the GIL, while the others are still
        #: being created (100 async jobs of 10 ms at -c 100: 0.29 s instead of 0.36).
        self.gate = gate
        self.current: UnitOfWork | None = None
        #: Jobs fetched together with ``current`` and not started yet. Like every
        #: fetched job they are in the in-flight list, so a kill -9 loses none.
        self.batch: deque[UnitOfWork] = deque()
        #: Raws of succeeded jobs whose acknowledgement rides on the next fetch, or
        #: is written by the launcher's main loop once older than ACK_DELAY_S.
        self.acks: list[bytes] = []
        self._acks_since = 0.0
        self._acks_lock = threading.Lock()
        #: Most jobs one fetch takes; 1 turns batching off. A processor takes more
        #: than one only from a queue holding ``concurrency`` jobs per job taken.
        self.max_batch = min(MAX_BATCH, max(1, 1000 // max(1, config.concurrency))) if (
            config.speedup("batch")) else 1
        #: Speed switches (``roadie.speedups``), read once.
        self._steals = config.speedup("steal")
        self._refills = config.speedup("refill")
        #: Moving average of this processor's job durations (s); 0 until it has timed
        #: one (most jobs are short: the first fetch takes a full batch).
        self.job_s = 0.0
        self.job_steady_s = 0.0
        #: True when ``fetcher`` has a connection of its own, closed when this ends.
        self.owns_connection = False
        #: True when jobs may use that connection as their ``roadie.redis_client()``.
        self.lends_connection = False
        #: Set by the launcher when it has pushed ``current`` back at shutdown:
        #: this processor must then write no outcome for it.
        self.abandoned = False
        self.outcomes = Outcomes(fetcher, config, hooks, outage, lambda: self.abandoned)
        self.pid = os.getpid()
        self.thread = threading.Thread(
            target=self.run, name=f"roadie.processor-{index}", daemon=True
        )
        nq = len(fetcher.queue_keys)
        # Idle processors block on the queues in turn, so that every queue has a
        # waiter and a job pushed to any of them starts at once.
        self._block_keys = [fetcher.queue_keys[(index + i) % nq] for i in range(nq)]
        self._block_timeout = BLOCK_TIMEOUT_S if config.concurrency >= nq else min(
            BLOCK_TIMEOUT_S, max(0.05, 1.0 / nq)
        )
        # With at least one processor per queue, processor i always waits on queue
        # i mod n: every queue keeps a waiter. With fewer, a processor moves to the
        # next queue only after a wait that timed out.
        self._rotate = config.concurrency < nq
        self._turn = 0
        self.tid = ""
        #: The last fetch took fewer jobs than it asked for: the queues are running
        #: dry, so jobs waiting in siblings' batches go first (no round trip).
        self._draining = False
        #: Fetches on the event loop for this processor's async jobs (the
        #: launcher's, shared by the processors); None: the thread fetches.
        self.loop_fetch: LoopFetcher | None = None
        #: Async jobs started on the loop for this processor before its thread ran
        #: (``start_on_loop``).
        self._first: Pending | None = None
        #: Set when the loop's fetch for this thread's next batch is over (none pending).
        self._refilled = threading.Event()
        self._refilled.set()
        #: Where this processor waits when the queues run dry while its siblings
        #: still run jobs (the launcher's, shared); None: it goes to Redis at once.
        self.idle: IdleLanes | None = None
        self._parked_on_loop = False
        #: Released by the loop when it starts the last job of this processor's
        #: batch: the thread then fetches the next one (``_on_loop``).
        self._wake = threading.Lock()

    def start(self) -> None:
        self.thread.start()

    # --- the loop ------------------------------------------------------------
    def run(self) -> None:
        self.tid = make_tid()
        if self.gate is not None:
            self.gate.wait(GATE_TIMEOUT_S)
        if self.lends_connection:
            lend_thread_client(self.fetcher.redis, self.config)
        backoff = Backoff()
        try:
            first, self._first = self._first, None
            if first is not None:  # its first async jobs already run (``start_on_loop``)
                self._await_loop(first)
                self.current = None
            while not self.state.quiet.is_set():
                try:
                    uow = self._next()
                    self.outage.ok("fetch")
                    backoff.reset()
                except TRANSIENT as exc:
                    self.outage.failed(exc, "fetch")
                    backoff.wait(self.state.quiet)
                    continue
                if uow is None:
                    continue
                self.current = uow
                # Quiet came while this processor waited in a blocking fetch: the
                # job goes back to the front of its queue, as in Sidekiq.
                if self.state.quiet.is_set():
                    self.batch.appendleft(uow)
                else:
                    self._handle(uow)
                self.current = None
            self._finish()
            self._release()
        except BaseException:
            log.exception("processor %s crashed; it will be replaced", self.thread.name)
            if not self.abandoned:
                self._rescue()
            self._release()
            raise

    def _handle(self, uow: UnitOfWork) -> None:
        """Run one job: an ``async def perform`` one, and the async jobs after it in
        this processor's batch, as tasks of the event loop (one hand-off each way
        for them all); any other job here, in this thread."""
        payload: pl.Payload | None = None
        if self.registry.has_async:
            payload, ready = self._for_loop(uow)
            if payload is not None and ready is not None:
                self._on_loop(uow, payload, *ready)
                return
        self._refill_soon()
        if self.process(uow, defer_ack=True, payload=payload) is not None:
            self._defer_ack(uow)

    def _refill_soon(self) -> None:
        """Before a sync job runs here, the last but one of its batch: if jobs are
        long enough, have the loop fetch the next batch meanwhile. At ``-c 100`` a
        thread's own fetch between two jobs took several ms, waiting for the GIL
        among 100 threads."""
        fetcher = self.loop_fetch
        if fetcher is None or not self._refills or self.job_steady_s < PREFETCH_MIN_S or (
                self.state.quiet.is_set()):
            return
        if len(self.batch) > 1 or not self._refilled.is_set():
            fetcher.warm_soon()  # so that the first such fetch finds the loop ready
            return
        # One job still waits after this one: the fetch has two jobs' time to arrive
        # (among 100 busy threads the loop may wait several ms for the GIL).
        self._refilled.clear()
        fetcher.refill_soon(self, self.batch_size(), self._refilled)

    def _rescue(self) -> None:
        """After a crash: the job that crashed this processor goes to the dead set as
        it was (requeued, it would crash the next processor, for ever); the jobs of its
        batch go back to their queues; its successes are acknowledged."""
        crashed, self.current = self.current, None
        try:
            if crashed is not None:
                self.fetcher.dead(crashed, crashed.raw)
                log.error("the job %r crashed its processor (see the traceback above): "
                          "moved to the dead set unchanged; retry it from the dashboard "
                          "once the cause is fixed", crashed.raw[:120].decode("utf-8", "replace"))
            unstarted = self.take_batch()
            if unstarted:
                self.fetcher.requeue(unstarted[::-1])
            self.fetcher.ack_many(self.take_acks())
        except Exception:
            log.exception("could not put away the jobs of a crashed processor; the janitor's "
                          "check of this process's in-flight list returns them")

    def held(self) -> list[bytes]:
        """Raws of the jobs this processor holds (fetched, not yet acknowledged).

        Read from another thread (the janitor): each piece is copied at once.
        """
        current = self.current
        return [*(() if current is None else (current.raw,)),
                *[u.raw for u in list(self.batch)], *list(self.acks)]

    def _finish(self) -> None:
        """The loop ended (quiet): acknowledge, and push back jobs not started."""
        self._refilled.wait(REFILL_WAIT_S)  # what a fetch under way takes goes back too
        acks = self.take_acks()
        if acks:
            self.outcomes.acknowledge(acks)
        # Oldest last: it lands at the very front of its queue.
        self.outcomes.requeue(self.take_batch()[::-1])

    def _release(self) -> None:
        if self.owns_connection:
            try:
                self.fetcher.redis.close()
            except Exception:
                log.debug("closing a processor's connection failed", exc_info=True)

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
        key = self._block_key()
        if self.outage.full:
            # Redis refuses a blocking fetch (BLMOVE may use memory) while full, but
            # runs fetch.lua: wait as long as a blocking fetch would, then fetch again.
            self.state.quiet.wait(self._block_timeout)
            return None
        if key in self.state.paused:
            # Never block on a paused queue: wait as long as a blocking fetch would.
            self.state.quiet.wait(self._block_timeout)
            if self._rotate:
                self._turn += 1
            return None
        idle = self.idle
        if idle is None:
            uow = self.fetcher.fetch_blocking(key, self._block_timeout)
        else:
            with idle.watching(key):
                uow = self.fetcher.fetch_blocking(key, self._block_timeout)
            if uow is not None:
                idle.found()
        if uow is None and self._rotate:
            self._turn += 1
        return uow

    def _park(self) -> bool:
        """The queues ran dry: wait in the process while siblings still run jobs
        and another processor waits on Redis for this one's queue (``idle.py``)."""
        if self.idle is None:
            return False
        return self.idle.park(self._block_key(), self.state.quiet, self._block_timeout)

    def _fetch(self) -> list[UnitOfWork]:
        """Up to ``batch_size()`` jobs, without blocking; this processor's pending
        acknowledgements ride on the same round trip."""
        paused = self.state.paused
        acks = self.take_acks()
        try:
            want = self.batch_size()
            got = self.fetcher.fetch(want, acks=acks, skip=paused,
                                     share=self.config.concurrency)
        except BaseException:
            # Removing a job from the in-flight list twice is harmless: try again.
            self.restore_acks(acks)
            raise
        self._draining = len(got) < want
        return got

    def _steal(self) -> UnitOfWork | None:
        """The oldest unstarted job of the next sibling that holds one, if any.

        The queues are (nearly) empty, and jobs fetched in batches wait behind
        their siblings' running jobs: this idle processor runs one of them now. A
        job stays in the process's in-flight list whichever processor runs it; each
        deque pop is atomic, so a job goes to exactly one processor.
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

    def take_batch(self) -> list[UnitOfWork]:
        """Empty this processor's batch, oldest first. Safe against a sibling
        stealing at the same time: each job ends up in one place."""
        taken: list[UnitOfWork] = []
        while True:
            try:
                taken.append(self.batch.popleft())
            except IndexError:
                return taken

    def batch_size(self) -> int:
        """How many jobs the next fetch may take: about HOLD_S of work."""
        job_s = self.job_s
        if job_s * self.max_batch <= HOLD_S:
            return self.max_batch
        return max(1, int(HOLD_S / job_s))


def deal(fetcher: Fetcher, processors: Sequence[Processor], state: State) -> int:
    """Give starting processors their first jobs with one round trip; returns how many.

    Without it, a process starting on a deep queue at ``-c 100`` made 100 fetches at
    once, one per thread, and its last processor ran its first job about 20 ms after
    the first one did: a delay every later job of that processor inherited. One fetch
    takes up to a full batch per processor (never more than the first non-empty
    queue holds) and deals the jobs out in turn, oldest first, so every processor
    starts together. They are in the process's in-flight list like any fetched job.
    If Redis does not answer, each processor fetches (and reports the outage) itself.
    """
    if not processors or state.quiet.is_set():
        return 0
    try:
        got = fetcher.fetch(len(processors) * processors[0].max_batch, skip=state.paused,
                            share=1)
    except TRANSIENT as exc:
        log.debug("the first fetch for all the processors failed (%s); each fetches "
                  "its own", exc)
        return 0
    deal_out(got, [(p, p.max_batch) for p in processors])
    for p in processors:
        p.start_on_loop()
    return len(got)
