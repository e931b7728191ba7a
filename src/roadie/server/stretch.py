"""A processor's side on the event loop: its ``async def perform`` jobs run there as
one stretch, one after another, while its thread sleeps; the loop also fetches
their next batches (``Supply.refill_on_loop``). One ``LoopSide`` per processor."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from roadie import payload as pl
from roadie.errors import Shutdown
from roadie.job import Job
from roadie.log import tid as make_tid
from roadie.server.asyncloop import LoopThread, Pending, wake_up
from roadie.server.fetch import UnitOfWork
from roadie.server.runner import Failed, JobRunner
from roadie.server.supply.supply import Supply

log = logging.getLogger("roadie")

#: How often a thread whose async jobs run on the loop wakes up meanwhile, in case
#: nothing woke it (a hard stop cancels those jobs, which wakes it). 100 threads
#: waking ten times a second each cost the loop the GIL 1,000 times a second.
LOOP_WAIT_SLICE_S = 2.0


class LoopSide:
    """Runs stretches of one processor's async jobs on the event loop."""

    def __init__(self, supply: Supply, runner: JobRunner,
                 loop_thread: Callable[[], LoopThread], abandoned: threading.Event) -> None:
        self.supply = supply
        self.runner = runner
        self.loop_thread = loop_thread
        self.abandoned = abandoned
        #: A stretch started before the processor's thread ran (``start_first``).
        self.first: Pending | None = None
        #: Set when the thread begins (``take_first``): no stretch starts for it
        #: from elsewhere after that, or two would run at once for one processor.
        self._thread_began = False
        self._first_lock = threading.Lock()
        #: Released by the loop when it starts the last job of the batch: the
        #: thread then fetches the next one (``Supply.prefetch``).
        self._wake = threading.Lock()

    def run(self, uow: UnitOfWork, payload: pl.Payload, job_cls: type[Job],
            args: list[Any]) -> None:
        """Hand ``uow`` and the async jobs after it to the loop (``_stretch``), which
        fetches the next batches itself while they run, and wait for them."""
        self.wait(self._start(uow, payload, job_cls, args))

    def _start(self, uow: UnitOfWork, payload: pl.Payload, job_cls: type[Job],
               args: list[Any]) -> Pending:
        self._wake = wake = threading.Lock()
        wake.acquire()
        return self.loop_thread().start(self._stretch(uow, payload, job_cls, args), wake)

    def start_first(self, native_id: int | None) -> None:
        """At start, from the thread that dealt the first jobs (``deal``), before the
        processor's thread passes the gate: if the first job of its batch is an async
        one, hand it (and the async jobs after it) to the loop now. The thread then
        only waits for them (``first``): a process starting 100 processors on a deep
        queue of async jobs had its last ones start 10 ms late, the time for 100
        threads to wake up and take the GIL in turn."""
        batch = self.supply.batch
        if not self.runner.registry.has_async or not batch:
            return
        with self._first_lock:
            if self._thread_began:  # no start gate, or it timed out: the thread takes them
                return
            payload, ready = self.runner.for_loop(batch[0])
            if payload is None or ready is None:
                return
            try:
                uow = batch.popleft()
            except IndexError:
                return
            self.runner.tid = self.runner.tid or make_tid(native_id)
            self.supply.current = uow
            self.first = self._start(uow, payload, *ready)

    def take_first(self) -> Pending | None:
        """From the processor's thread as it begins: the stretch started for it, if
        any, to wait for; none is started for it after this."""
        with self._first_lock:
            self._thread_began = True
            first, self.first = self.first, None
            return first

    def wait(self, pending: Pending) -> None:
        """Wait for a stretch of async jobs started on the loop; fetch the next batch
        when the loop asks for it (the loop has no fetcher, or its fetch failed)."""
        try:
            while True:
                if not pending.wait(LOOP_WAIT_SLICE_S):
                    continue
                if pending.done:
                    break
                self.supply.prefetch()
        except Shutdown:
            # A hard stop pushed the running job back: its task is cancelled.
            pending.cancel()
            if not self.abandoned.is_set():
                raise
            current = self.supply.current
            log.warning("an async job was interrupted by the shutdown; it was pushed back: "
                        "%r", b"" if current is None else current.raw[:120])
            return
        except BaseException:
            pending.cancel()
            raise
        failed: Failed | None = pending.result()
        if failed is not None:
            self.runner.finish_failed(failed)

    async def _refill(self) -> None:
        if not await self.supply.refill_on_loop():
            wake_up(self._wake)  # the thread fetches (``Supply.prefetch``)

    async def _stretch(self, uow: UnitOfWork, payload: pl.Payload, job_cls: type[Job],
                       args: list[Any]) -> Failed | None:
        """On the event loop: run ``uow``, then the async jobs that follow it in
        the batch (fetching the next batch while the last one runs), until one
        fails, a job of another kind comes next (it goes back to the batch, for the
        thread), no job is left (the thread waits for more) or the process quiets."""
        supply, runner = self.supply, self.runner
        quiet = runner.state.quiet
        refill: asyncio.Task[None] | None = None
        try:
            while True:
                if len(supply.batch) <= 1 and refill is None:
                    # Two jobs' time for the fetch (see ``Supply.before_sync_job``).
                    refill = asyncio.get_running_loop().create_task(self._refill())
                done = await runner.run_async(uow, payload, job_cls, args)
                if isinstance(done, Failed):
                    return done
                if done is not None:
                    supply.succeeded(done, runner.outcomes)
                if self.abandoned.is_set() or quiet.is_set():
                    return None
                if refill is not None and (refill.done() or not supply.batch):
                    await refill
                    refill = None
                # The queues running dry, a job waiting in a sibling's batch runs
                # here rather than behind that sibling's job.
                taken = supply.take_at_hand()
                if taken is None:
                    await supply.park_on_loop()
                    return None
                uow = taken
                decoded, ready = runner.for_loop(uow)
                if decoded is None or ready is None:
                    supply.put_back(uow)  # the thread runs it
                    return None
                payload, (job_cls, args) = decoded, ready
        finally:
            # Jobs a fetch took are in the batch before the thread goes on.
            if refill is not None and not refill.done():
                await refill
