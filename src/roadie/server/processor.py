"""One processor: a thread that takes a job, runs it, and writes its outcome."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from roadie import payload as pl
from roadie.config import Config
from roadie.current import lend_thread_client
from roadie.keys import Keys
from roadie.log import tid as make_tid
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.asyncloop import LoopThread
from roadie.server.fetch import Fetcher, UnitOfWork
from roadie.server.outage import TRANSIENT, Backoff, Outage
from roadie.server.outcome import Outcomes
from roadie.server.pace import Pace
from roadie.server.runner import JobRunner
from roadie.server.state import State
from roadie.server.stretch import LoopSide
from roadie.server.supply.parking import Parking
from roadie.server.supply.supply import LoopRefills, Supply

log = logging.getLogger("roadie")

#: Longest a processor waits for its siblings to be started before it fetches.
GATE_TIMEOUT_S = 5.0


class Processor:
    """One of a process's ``concurrency`` threads running jobs. Its loop:

    1. **take** the next job from its ``supply`` (its batch, a sibling's, a fetch,
       or a blocking wait on Redis: ``supply/supply.py``);
    2. **run** it with its ``runner`` (decode, resolve, middleware, perform:
       ``runner.py``), or, for an ``async def perform`` job, hand it and the async
       jobs after it to the event loop (``loop_side``, ``stretch.py``);
    3. **write its outcome** (``outcome.py``): a success's acknowledgement rides on
       the next fetch; a failure goes to the retry or dead set at once.

    Until its outcome is written a job stays in the process's in-flight list, so a
    kill -9 at any step loses none. On quiet the loop ends: held acknowledgements
    are written and unstarted jobs go back to the front of their queues. A crash
    buries the job that caused it and returns the rest; the manager replaces the
    processor.
    """

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
        loop_thread: Callable[[], LoopThread],
        siblings: Callable[[], Sequence[Supply]] | None = None,
        gate: threading.Event | None = None,
        loop_fetch: LoopRefills | None = None,
        parking: Parking | None = None,
        owns_connection: bool = False,
        lends_connection: bool = False,
    ) -> None:
        self.config = config
        self.fetcher = fetcher
        self.state = state
        self.outage = outage
        #: Set when all the processors of the process exist: they start fetching
        #: together. A process starting on a deep queue otherwise has its first
        #: processors running jobs, and holding the GIL, while the others are still
        #: being created (100 async jobs of 10 ms at -c 100: 0.29 s instead of 0.36).
        self.gate = gate
        #: ``fetcher`` has a connection of its own, closed when this processor ends.
        self.owns_connection = owns_connection
        #: Jobs may use that connection as their ``roadie.redis_client()``.
        self.lends_connection = lends_connection
        #: Set by the manager at a hard stop, once it has pushed this processor's
        #: jobs back: it must then write no outcome for them.
        self.abandoned = threading.Event()
        self.pace = Pace()
        self.outcomes = Outcomes(fetcher, config, hooks, outage, self.abandoned.is_set)
        self.supply = Supply(
            index, config=config, fetcher=fetcher, state=state, outage=outage,
            pace=self.pace, abandoned=self.abandoned, siblings=siblings,
            loop_fetch=loop_fetch, parking=parking,
        )
        self.runner = JobRunner(
            config=config, keys=keys, state=state, hooks=hooks, registry=registry,
            outcomes=self.outcomes, loop_thread=loop_thread, pace=self.pace,
            abandoned=self.abandoned,
        )
        self.loop_side = LoopSide(self.supply, self.runner, loop_thread, self.abandoned)
        self.registry = registry
        self.thread = threading.Thread(
            target=self.run, name=f"roadie.processor-{index}", daemon=True
        )

    @property
    def current(self) -> UnitOfWork | None:
        """The job this processor runs now, if any."""
        return self.supply.current

    def start(self) -> None:
        self.thread.start()

    def start_on_loop(self) -> None:
        """Its first jobs dealt (``supply/deal.py``): start them on the event loop now
        if they are async and its thread has not begun (``LoopSide.start_first``)."""
        self.loop_side.start_first(self.thread.native_id)

    # --- the loop ------------------------------------------------------------
    def run(self) -> None:
        self.runner.tid = make_tid()
        if self.gate is not None:
            self.gate.wait(GATE_TIMEOUT_S)
        if self.lends_connection:
            lend_thread_client(self.fetcher.redis, self.config)
        supply, quiet = self.supply, self.state.quiet
        backoff = Backoff()
        try:
            first = self.loop_side.take_first()
            if first is not None:  # its first async jobs run already (``start_on_loop``)
                self.loop_side.wait(first)
                supply.current = None
            while not quiet.is_set():
                try:
                    uow = supply.take()
                    self.outage.ok("fetch")
                    backoff.reset()
                except TRANSIENT as exc:
                    self.outage.failed(exc, "fetch")
                    backoff.wait(quiet)
                    continue
                if uow is None:
                    continue
                if quiet.is_set():
                    # Quiet came while this processor waited in a blocking fetch: the
                    # job goes back to the front of its queue, as in Sidekiq.
                    supply.put_back(uow)
                else:
                    self._run(uow)
                supply.current = None
            supply.finish(self.outcomes)
            self._release()
        except BaseException:
            log.exception("processor %s crashed; it will be replaced", self.thread.name)
            if not self.abandoned.is_set():
                self._rescue()
            self._release()
            raise

    def _run(self, uow: UnitOfWork) -> None:
        """Run one job and write its outcome: an ``async def perform`` one, with the
        async jobs after it in the batch, as tasks of the event loop (one hand-off
        each way for them all); any other job here, in this thread."""
        payload: pl.Payload | None = None
        if self.registry.has_async:
            payload, ready = self.runner.for_loop(uow)
            if payload is not None and ready is not None:
                self.loop_side.run(uow, payload, *ready)
                return
        self.supply.before_sync_job()
        if self.runner.process(uow, defer_ack=True, payload=payload) is not None:
            self.supply.succeeded(uow, self.outcomes)

    # --- the end ---------------------------------------------------------------
    def _rescue(self) -> None:
        """After a crash: the job that crashed this processor goes to the dead set as
        it was (requeued, it would crash the next processor, for ever); the jobs of its
        batch go back to their queues; its successes are acknowledged."""
        supply = self.supply
        crashed, supply.current = supply.current, None
        try:
            if crashed is not None:
                self.fetcher.dead(crashed, crashed.raw)
                log.error("the job %r crashed its processor (see the traceback above): "
                          "moved to the dead set unchanged; retry it from the dashboard "
                          "once the cause is fixed", crashed.raw[:120].decode("utf-8", "replace"))
            unstarted = supply.take_batch()
            if unstarted:
                self.fetcher.requeue(unstarted[::-1])
            self.fetcher.ack_many(supply.acks.take())
        except Exception:
            log.exception("could not put away the jobs of a crashed processor; the janitor's "
                          "check of this process's in-flight list returns them")

    def _release(self) -> None:
        if self.owns_connection:
            try:
                self.fetcher.redis.close()
            except Exception:
                log.debug("closing a processor's connection failed", exc_info=True)
