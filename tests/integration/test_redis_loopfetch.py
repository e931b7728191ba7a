"""server/supply/loopfetch.py: the event loop fetches a processor's next batch
itself while the last jobs of its batch run (refill), processors running out together
share one round trip, and a failed loop fetch keeps the held acknowledgements and
leaves the fetch to the thread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import redis
from integration_support import INFLIGHT, make_processor
from support.wait import wait_until

from roadie.config import Config
from roadie.job import Job
from roadie.redis.connection import connect_async
from roadie.registry import Registry
from roadie.server.asyncloop import LoopThread
from roadie.server.processor import Processor
from roadie.server.supply.loopfetch import LoopFetcher
from roadie.server.supply.supply import PREFETCH_MIN_S

pytestmark = pytest.mark.usefixtures("client")


@pytest.fixture
def loop_thread(config: Config) -> Iterator[LoopThread]:
    """An event loop thread with a Redis client of its own, as the launcher makes it."""
    runner = LoopThread(connect=partial(connect_async, config))
    yield runner
    runner.stop()
    runner.thread.join(5)


def loop_fetching(r: redis.Redis, config: Config, registry: Registry,
                  runner: LoopThread) -> Processor:
    """A processor (concurrency 1, not started) whose next batches the loop fetches."""
    proc = make_processor(r, config.replace(concurrency=1), registry,
                          loop_thread=lambda: runner)
    proc.supply.loop_fetch = LoopFetcher(proc.fetcher, lambda: runner, proc.state,
                                         proc.outage, 1)
    return proc


def loop_fetches(proc: Processor) -> int:
    """Round trips the loop made for ``proc`` (``loop_fetching``'s fetcher)."""
    fetcher = proc.supply.loop_fetch
    assert isinstance(fetcher, LoopFetcher)
    return fetcher.fetches


def run_until(proc: Processor, done: Callable[[], bool], message: str) -> None:
    """Start ``proc`` and wait for ``done``; then quiet it and join its thread."""
    proc.start()
    try:
        wait_until(done, message=message)
    finally:
        proc.state.quiet.set()
        proc.thread.join(10)


def test_the_loop_fetches_the_next_batch_itself_and_the_thread_sleeps(
    r: redis.Redis, config: Config, registry: Registry, loop_thread: LoopThread,
) -> None:
    ran: list[int] = []
    proc = loop_fetching(r, config, registry, loop_thread)
    thread_fetches: list[int] = []
    proc.supply.prefetch = lambda: thread_fetches.append(1)  # type: ignore[method-assign]

    class Coro(Job, registry=registry, name="Coro"):
        async def perform(self, i: int) -> None:
            ran.append(i)
            if i == 0:  # after the first fetch: the next batch
                Coro.perform_bulk([[6], [7], [8]])

    Coro.perform_bulk([[i] for i in range(6)])
    run_until(proc, lambda: len(ran) == 9 and r.llen(INFLIGHT) == 0,
              "the two batches did not run")

    assert ran == list(range(9))
    # The loop went from one batch to the next with its own round trip (a second
    # one found the queue empty); the processor's thread never fetched meanwhile.
    assert loop_fetches(proc) >= 1 and thread_fetches == []
    assert proc.state.take_counts() == (9, 0)


@pytest.mark.speedup("batch", "loop_fetch", "refill")
def test_sync_jobs_get_their_next_batch_from_the_loop_while_the_last_ones_run(
    r: redis.Redis, config: Config, registry: Registry, loop_thread: LoopThread,
) -> None:
    ran: list[int] = []
    proc = loop_fetching(r, config, registry, loop_thread)
    thread_fetches: list[int] = []
    own_fetch = proc.supply._fetch

    def counted() -> list[Any]:
        got = own_fetch()
        thread_fetches.append(len(got))
        return got

    proc.supply._fetch = counted  # type: ignore[method-assign]

    class Slow(Job, registry=registry, name="Slow"):
        def perform(self, i: int) -> None:
            ran.append(i)
            time.sleep(3 * PREFETCH_MIN_S)  # the work: long enough to fetch meanwhile

    Slow.perform_bulk([[i] for i in range(12)])
    run_until(proc, lambda: len(ran) == 12 and r.llen(INFLIGHT) == 0, "the jobs did not run")

    assert ran == list(range(12))
    # The thread took the first batch (10); the last two jobs came with the loop's
    # fetch, made while the batch's last jobs ran; the thread's later fetches
    # found the queue empty.
    assert thread_fetches[0] == 10 and sum(thread_fetches[1:]) == 0
    assert loop_fetches(proc) >= 1
    assert proc.state.take_counts() == (12, 0)


def test_processors_running_out_together_share_one_round_trip(
    r: redis.Redis, config: Config, registry: Registry, loop_thread: LoopThread,
) -> None:
    conf = config.replace(concurrency=2)
    a, b = (make_processor(r, conf, registry) for _ in range(2))
    fetcher = LoopFetcher(a.fetcher, lambda: loop_thread, a.state, a.outage, 2)
    r.lpush("queue:default", *[f"j{i}".encode() for i in range(10)])
    r.lpush(INFLIGHT, b"done-a", b"done-b")
    a.supply.acks.restore([b"done-a"])
    b.supply.acks.restore([b"done-b"])

    async def both() -> list[bool]:
        return list(await asyncio.gather(fetcher.refill(a.supply, 3), fetcher.refill(b.supply, 3)))

    assert loop_thread.run(both()) == [True, True]

    assert fetcher.fetches == 1
    assert [u.raw for u in a.supply.batch] == [b"j0", b"j2", b"j4"]
    assert [u.raw for u in b.supply.batch] == [b"j1", b"j3", b"j5"]
    # Both processors' acknowledgements rode on that round trip.
    assert a.supply.acks.raws == [] and b.supply.acks.raws == []
    assert sorted(r.lrange(INFLIGHT, 0, -1)) == [f"j{i}".encode() for i in range(6)]
    assert r.llen("queue:default") == 4


def test_a_failed_loop_fetch_keeps_the_acks_and_lets_the_thread_fetch(
    r: redis.Redis, config: Config, registry: Registry,
) -> None:
    down = LoopThread(connect=partial(connect_async, config.replace(
        redis_url="redis://127.0.0.1:1/0", connect_timeout_s=0.5)))
    try:
        proc = make_processor(r, config, registry)
        fetcher = LoopFetcher(proc.fetcher, lambda: down, proc.state, proc.outage, 1)
        proc.supply.acks.restore([b"done"])

        assert down.run(fetcher.refill(proc.supply, 5)) is False

        assert proc.supply.acks.raws == [b"done"] and not proc.supply.batch and fetcher.fetches == 0
        assert proc.outage.down  # reported, as a thread's failed fetch is
    finally:
        down.stop()
        down.thread.join(5)
