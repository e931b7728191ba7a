"""The event-loop side of a processor: its ``async def perform`` jobs run as one
stretch on the process's event loop, which also fetches their next batches, while
the processor's thread sleeps (``Processor`` is a ``LoopLane``)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from roadie import payload as pl
from roadie.errors import MalformedPayload, Shutdown
from roadie.job import Job
from roadie.log import tid as make_tid
from roadie.server.asyncloop import AsyncRunner, Pending, wake_up
from roadie.server.fetch import UnitOfWork
from roadie.server.idle import IdleLanes
from roadie.server.outage import TRANSIENT
from roadie.server.runner import Failed, JobRunner

if TYPE_CHECKING:
    from roadie.server.loopfetch import LoopFetcher

log = logging.getLogger("roadie")

#: How often a thread whose async jobs run on the loop wakes up meanwhile, in case
#: nothing woke it (a hard stop cancels those jobs, which wakes it). 100 threads
#: waking ten times a second each cost the loop the GIL 1,000 times a second.
LOOP_WAIT_SLICE_S = 2.0


class LoopLane(JobRunner):
    """What a processor does on the event loop; its thread's side is ``Processor``."""

    # Set by Processor.__init__.
    thread: threading.Thread
    current: UnitOfWork | None
    batch: deque[UnitOfWork]
    acks: list[bytes]
    _acks_since: float
    _acks_lock: threading.Lock
    async_runner: Callable[[], AsyncRunner]
    loop_fetch: LoopFetcher | None
    idle: IdleLanes | None
    _first: Pending | None
    _wake: threading.Lock
    _draining: bool
    _parked_on_loop: bool
    _block_keys: list[str]
    _turn: int
    _block_timeout: float

    def _fetch(self) -> list[UnitOfWork]:
        raise NotImplementedError

    def _steal(self) -> UnitOfWork | None:
        raise NotImplementedError

    def batch_size(self) -> int:
        raise NotImplementedError

    def _block_key(self) -> str:
        """The queue this processor waits on when every queue is empty."""
        return self._block_keys[self._turn % len(self._block_keys)]

    def take_acks(self, older_than: float = 0.0) -> list[bytes]:
        """Take the pending acknowledgements (all, or none if the oldest is younger
        than ``older_than`` seconds); whoever takes them writes them."""
        with self._acks_lock:
            if not self.acks or time.monotonic() - self._acks_since < older_than:
                return []
            acks, self.acks = self.acks, []
            return acks

    def restore_acks(self, acks: list[bytes]) -> None:
        """Give back acknowledgements that could not be written (Redis is away)."""
        if acks:
            with self._acks_lock:
                if not self.acks:
                    self._acks_since = time.monotonic()
                self.acks[:0] = acks

    def _for_loop(
        self, uow: UnitOfWork
    ) -> tuple[pl.Payload | None, tuple[type[Job], list[Any]] | None]:
        """The job's payload (None if malformed: ``process`` reports it), and its
        class and arguments if it is to run on the event loop (``loop_ready``)."""
        try:
            payload = pl.decode(uow.raw)
        except MalformedPayload:
            return None, None
        return payload, self.loop_ready(payload)

    def _defer_ack(self, uow: UnitOfWork) -> None:
        if not self.config.speedup("deferred_ack"):
            self.outcomes.succeeded(uow)  # at once, on this thread (or the loop's)
            return
        with self._acks_lock:
            if not self.acks:
                self._acks_since = time.monotonic()
            self.acks.append(uow.raw)

    def _on_loop(self, uow: UnitOfWork, payload: pl.Payload, job_cls: type[Job],
                 args: list[Any]) -> None:
        """Hand ``uow`` and the async jobs after it to the loop (``_stretch``), which
        fetches the next batches itself while they run, and wait for them."""
        self._await_loop(self._start_loop(uow, payload, job_cls, args))

    def _start_loop(self, uow: UnitOfWork, payload: pl.Payload, job_cls: type[Job],
                    args: list[Any]) -> Pending:
        self._wake = wake = threading.Lock()
        wake.acquire()
        return self.async_runner().start(self._stretch(uow, payload, job_cls, args), wake)

    def start_on_loop(self) -> None:
        """At start, from the thread that dealt the first jobs (``deal``), before this
        processor's thread passes the gate: if the first job of its batch is an async
        one, hand it (and the async jobs after it) to the loop now. The thread then
        only waits for them: a process starting 100 processors on a deep queue of
        async jobs had its last ones start 10 ms late, the time for 100 threads to
        wake up and take the GIL in turn."""
        if not self.registry.has_async or not self.batch:
            return
        payload, ready = self._for_loop(self.batch[0])
        if payload is None or ready is None:
            return
        try:
            uow = self.batch.popleft()
        except IndexError:  # the thread is past the gate after all, and took it
            return
        self.tid = self.tid or make_tid(self.thread.native_id)
        self.current = uow
        self._first = self._start_loop(uow, payload, *ready)

    def _await_loop(self, pending: Pending) -> None:
        """Wait for a stretch of async jobs started on the loop; fetch the next batch
        when the loop asks for it (``_refill`` without the loop's fetcher)."""
        try:
            while True:
                if not pending.wait(LOOP_WAIT_SLICE_S):
                    continue
                if pending.done:
                    break
                self._prefetch()
        except Shutdown:
            # A hard stop pushed the running job back: its task is cancelled.
            pending.cancel()
            if not self.abandoned:
                raise
            current = self.current
            log.warning("an async job was interrupted by the shutdown; it was pushed back: "
                        "%r", b"" if current is None else current.raw[:120])
            return
        except BaseException:
            pending.cancel()
            raise
        failed: Failed | None = pending.result()
        if failed is not None:
            self.finish_failed(failed)

    def _prefetch(self) -> None:
        """Fetch the next batch while the loop runs the last job of this one."""
        if self.batch or self.abandoned or self.state.quiet.is_set():
            return
        try:
            got = self._fetch()
        except TRANSIENT as exc:
            self.outage.failed(exc, "fetch")  # the loop goes on; the next fetch retries
            return
        self.outage.ok()
        self.batch.extend(got)

    async def _refill(self) -> None:
        """On the loop, while the last jobs of this processor's batch run: fetch the
        next batch there (``loopfetch``), so that this thread does not wake up for
        it. Without the loop's fetcher, or if it fails, the thread fetches."""
        if len(self.batch) > 1 or self.abandoned or self.state.quiet.is_set():
            return
        if self.loop_fetch is None or not await self.loop_fetch.refill(
                self, self.batch_size()):
            wake_up(self._wake)  # the thread fetches (``_prefetch``)

    def note_fetched(self, got: int, wanted: int) -> None:
        """A fetch made for this processor elsewhere took ``got`` of ``wanted`` jobs."""
        self._draining = got < wanted

    async def _stretch(self, uow: UnitOfWork, payload: pl.Payload, job_cls: type[Job],
                       args: list[Any]) -> Failed | None:
        """On the event loop: run ``uow``, then the async jobs that follow it in
        this processor's batch (fetching the next batch while the last one runs),
        until one fails, a job of another kind comes next (it goes back to the
        batch, for the thread), no job is left (the thread waits for more) or the
        process quiets."""
        refill: asyncio.Task[None] | None = None
        try:
            while True:
                if len(self.batch) <= 1 and refill is None:
                    # Two jobs' time for the fetch (see ``_refill_soon``).
                    refill = asyncio.get_running_loop().create_task(self._refill())
                done = await self.run_async(uow, payload, job_cls, args)
                if isinstance(done, Failed):
                    return done
                if done is not None:
                    self._defer_ack(done)
                if self.abandoned or self.state.quiet.is_set():
                    return None
                if refill is not None and (refill.done() or not self.batch):
                    await refill
                    refill = None
                try:
                    uow = self.batch.popleft()
                except IndexError:
                    # The queues are running dry: run a job waiting in a sibling's
                    # batch rather than leave it to wait behind that sibling's job.
                    stolen = self._steal() if self._draining else None
                    if stolen is None:
                        self.current = None
                        await self._park_on_loop()
                        return None
                    uow = stolen
                self.current = uow
                decoded, ready = self._for_loop(uow)
                if decoded is None or ready is None:
                    self.batch.appendleft(uow)  # the thread runs it
                    return None
                payload, (job_cls, args) = decoded, ready
        finally:
            # Jobs a fetch took are in the batch before the thread goes on.
            if refill is not None and not refill.done():
                await refill

    async def _park_on_loop(self) -> None:
        """``_park`` without waking this processor's thread: at the end of a drain,
        100 threads waking as their stretches ran dry delayed the async jobs still
        running on the loop. The thread then fetches without parking again."""
        idle = self.idle
        if idle is None:
            return
        future = idle.park_on_loop(self._block_key(), self.state.quiet)
        if future is None:
            return
        self._parked_on_loop = True
        try:
            await asyncio.wait_for(future, self._block_timeout)
        except TimeoutError:
            pass
        finally:
            idle.unpark(future)
