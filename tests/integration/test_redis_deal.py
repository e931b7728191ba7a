"""server/supply/deal.py: starting processors get their first jobs from one fetch,
dealt out in turn (and their first async jobs start on the event loop at once)."""

from __future__ import annotations

import threading

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from support.wait import wait_until

from roadie.config import Config
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.fetch import Fetcher
from roadie.server.launcher import Launcher
from roadie.server.supply.deal import deal

#: Every test pushes through the test's Redis (the ``client`` fixture, conftest.py).
pytestmark = pytest.mark.usefixtures("client")


@pytest.mark.parametrize(("length", "dealt"), [
    (10, [[0, 4, 8], [1, 5, 9], [2, 6], [3, 7]]),  # a short queue: all of it, in turn
    (50, [list(range(k, 40, 4)) for k in range(4)]),  # a deep one: a full batch each
])
@pytest.mark.speedup("deal")
def test_deal_gives_starting_processors_their_first_jobs_in_one_fetch(
    r: redis.Redis, config: Config, registry: Registry, length: int, dealt: list[list[int]]
) -> None:
    launcher = Launcher(config.replace(concurrency=4), hooks=Hooks(), registry=registry)
    procs = [launcher._processor(i) for i in range(4)]
    r.lpush("queue:default", *[f"j{i}".encode() for i in range(length)])
    launcher.fetcher.ack_many([b"none", b"such"])  # loads the script
    calls = r.info("commandstats")["cmdstat_evalsha"]["calls"]

    taken = deal(launcher.fetcher, [p.supply for p in procs], launcher.state)

    assert taken == sum(map(len, dealt)) == r.llen(f"roadie:inflight:{launcher.identity}")
    assert r.llen("queue:default") == length - taken
    assert [[u.raw.decode() for u in p.supply.batch] for p in procs] == [
        [f"j{i}" for i in want] for want in dealt]
    assert r.info("commandstats")["cmdstat_evalsha"]["calls"] == calls + 1
    for p in procs:
        p.fetcher.redis.close()


@pytest.mark.speedup("deal")
def test_deal_starts_the_first_async_jobs_on_the_loop_before_any_thread_runs(
    r: redis.Redis, config: Config, registry: Registry
) -> None:
    ran: list[tuple[int, str]] = []

    class Coro(Job, registry=registry, name="Coro"):
        async def perform(self, i: int) -> None:
            ran.append((i, threading.current_thread().name))

    launcher = Launcher(config.replace(concurrency=2), hooks=Hooks(), registry=registry)
    procs = [launcher._processor(i) for i in range(2)]  # threads not started
    Coro.perform_bulk([[i] for i in range(4)])
    try:
        assert launcher._deal(procs) == 4

        # Each processor's first two jobs run on the loop, though no processor
        # thread exists to hand them over; each waits for its thread to collect.
        wait_until(lambda: len(ran) == 4, message="the dealt async jobs did not run")
        assert sorted(ran) == [(i, "roadie.asyncio") for i in range(4)]
        for p in procs:
            first = p.loop_side.first
            assert first is not None and first.wait(5) and first.done
            assert first.result() is None and not p.supply.batch
        assert sorted(raw for p in procs for raw in p.supply.acks.raws) == sorted(
            r.lrange(f"roadie:inflight:{launcher.identity}", 0, -1))
    finally:
        launcher._loop_thread().stop()
        for p in procs:
            p.fetcher.redis.close()


def test_deal_takes_nothing_after_quiet_or_without_redis(
    r: redis.Redis, config: Config, registry: Registry
) -> None:
    launcher = Launcher(config.replace(concurrency=2), hooks=Hooks(), registry=registry)
    procs = [launcher._processor(i) for i in range(2)]
    r.lpush("queue:default", b"j0", b"j1")
    launcher.state.quiet.set()
    assert deal(launcher.fetcher, [p.supply for p in procs], launcher.state) == 0
    launcher.state.quiet.clear()
    # A Redis that does not answer: the processors will fetch (and report) themselves.
    down = Fetcher(redis.Redis(port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)),
                   config, launcher.keys,
                   launcher.identity)
    assert deal(down, [p.supply for p in procs], launcher.state) == 0
    assert all(not p.supply.batch for p in procs) and r.llen("queue:default") == 2
    for p in procs:
        p.fetcher.redis.close()
