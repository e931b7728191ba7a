"""Fetching on the event loop, for processors whose jobs are async or long.

A processor running async jobs hands its batch to the loop (``stretch.py``); one
running sync jobs of ``PREFETCH_MIN_S`` or more asks the loop from its thread
(``Supply.before_sync_job``). Either way, when the last job but one of the batch
starts, the next batch is fetched here, on the loop, on its own connection
(``roadie.redis.loop``), so that no processor thread makes that round trip between
two jobs (at ``-c 100`` a thread waited several ms for the GIL to make it, and
threads waking up for it cost the loop a third of its time). Processors whose
batches run out together (jobs of the same length, started together) are served by
one round trip: requests that arrive while a fetch is under way wait for the next
one, which takes jobs for all of them and deals them out in turn, as
``deal.deal`` does at start. Their pending acknowledgements ride on that round
trip.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

from roadie.redis.loop import LoopRedis
from roadie.server.asyncloop import LoopThread
from roadie.server.fetch import Fetcher, fetch_order
from roadie.server.outage import TRANSIENT, Outage
from roadie.server.state import State
from roadie.server.supply.deal import deal_out
from roadie.server.supply.supply import Supply

log = logging.getLogger("roadie")


@dataclass(slots=True)
class _Request:
    supply: Supply
    want: int
    done: asyncio.Future[bool]


class LoopFetcher:
    """One per process; used only on the event loop's thread."""

    def __init__(self, fetcher: Fetcher, loop_thread: Callable[[], LoopThread], state: State,
                 outage: Outage, concurrency: int) -> None:
        self.fetcher = fetcher  # for its queue order and keys; its connection is unused
        self.loop_thread = loop_thread  # the process's event loop, started on first use
        self.state = state
        self.outage = outage
        self.concurrency = concurrency
        self._waiting: list[_Request] = []
        self._busy = False
        self._server: asyncio.Task[None] | None = None
        self._soon: set[asyncio.Task[None]] = set()
        self._warming = False
        self._redis: LoopRedis | None = None
        #: Round trips made (for tests and benchmarks).
        self.fetches = 0

    async def refill(self, supply: Supply, want: int) -> bool:
        """Fetch up to ``want`` jobs into ``supply.batch``, together with any other
        processor asking meanwhile. False if it could not be done here (no client,
        Redis away): the processor's thread fetches, and reports, itself."""
        loop = asyncio.get_running_loop()
        request = _Request(supply, want, loop.create_future())
        self._waiting.append(request)
        if not self._busy:
            self._busy = True
            self._server = loop.create_task(self._serve())
        return await request.done

    def warm_soon(self) -> None:
        """From any thread, once: start the loop and connect its client, without
        waiting (the loop of a process with only sync jobs starts when a processor
        finds its jobs long enough to fetch for them there)."""
        if not self._warming:
            self._warming = True
            loop_thread = self.loop_thread()
            self._spawn(loop_thread, loop_thread.connected)

    def refill_soon(self, supply: Supply, want: int, done: threading.Event) -> None:
        """From a processor thread about to run the last job but one of its batch (a
        sync job): fetch its next batch on the loop while its jobs run, so that the
        thread finds it waiting instead of making a round trip between two jobs.
        ``done`` is set when that fetch is over, whatever came of it."""
        try:
            self._spawn(self.loop_thread(), lambda: self._refill_then(supply, want, done))
        except RuntimeError:  # the loop is closed: the process is stopping
            done.set()

    def _spawn(self, loop_thread: LoopThread,
               coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """From any thread: run ``coro()`` as a task of the loop, referenced until it
        ends."""

        def start() -> None:
            task = loop_thread.loop.create_task(coro())
            self._soon.add(task)
            task.add_done_callback(self._soon.discard)

        loop_thread.loop.call_soon_threadsafe(start)

    async def _refill_then(self, supply: Supply, want: int,
                           done: threading.Event) -> None:
        try:
            if not supply.abandoned.is_set() and not self.state.quiet.is_set():
                await self.refill(supply, want)
        finally:
            done.set()

    async def _serve(self) -> None:
        try:
            while self._waiting:
                requests, self._waiting = self._waiting, []
                ok = await self._fetch_for(requests)
                for r in requests:
                    if not r.done.done():
                        r.done.set_result(ok)
        finally:
            self._busy = False
            for r in self._waiting:  # only after a cancellation (the loop stops)
                if not r.done.done():
                    r.done.set_result(False)
            self._waiting = []

    async def _execute(self) -> Callable[..., Awaitable[Any]] | None:
        """How this loop sends a command to Redis: on its own connection of the
        loop's client (``LoopRedis``); None when the loop has no client."""
        client = await self.loop_thread().client()
        if client is None:
            return None
        if not LoopRedis.usable() or not self.fetcher.config.speedup("loop_connection"):
            return cast(Callable[..., Awaitable[Any]], client.execute_command)
        if self._redis is None or self._redis.client is not client:
            self._redis = LoopRedis(client, self.fetcher.config.socket_timeout_s)
        return self._redis.execute

    async def _fetch_for(self, requests: list[_Request]) -> bool:
        execute = await self._execute()
        if execute is None:
            return False
        acks = [(r.supply, r.supply.acks.take()) for r in requests]
        total = sum(r.want for r in requests)
        # Each processor alone takes at most one job per `concurrency` in the queue
        # (fetch.lua's share); k processors together take k times that.
        share = max(1, self.concurrency // len(requests))
        try:
            got = await self.fetcher.fetch_async(
                execute, total, acks=fetch_order(taken for _, taken in acks),
                skip=self.state.paused, share=share)
        except BaseException as exc:
            # Removing a job from the in-flight list twice is harmless: try again.
            for supply, taken in acks:
                supply.acks.restore(taken)
            if isinstance(exc, TRANSIENT):
                self.outage.failed(exc, "fetch")
            elif isinstance(exc, Exception):
                log.warning("fetching on the event loop failed; processors fetch from "
                            "their threads", exc_info=True)
            else:
                raise
            return False
        self.fetches += 1
        self.outage.ok()
        deal_out(got, [(r.supply, r.want) for r in requests])
        return True

