"""Batched fetch: a processor takes several jobs from a deep queue in one round trip,
and acknowledges its successes together, without weakening reliable fetch."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from integration_support import (
    IDENTITY,
    LoopThreads,
    loads,
    make_processor,
    started_processors,
)
from redis.backoff import NoBackoff
from redis.retry import Retry
from support.wait import wait_until

import roadie
import roadie.current
from roadie.client import Client
from roadie.config import Config
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.scripts import Scripts
from roadie.server.fetch import Fetcher, UnitOfWork
from roadie.server.launcher import Launcher
from roadie.server.outcome import Outcomes
from roadie.server.processor import Processor
from roadie.server.supply.acks import ACK_DELAY_S
from roadie.server.supply.deal import deal
from roadie.server.supply.supply import HOLD_S

INFLIGHT = f"roadie:inflight:{IDENTITY}"


#: Every test pushes through the test's Redis (the ``client`` fixture, conftest.py).
pytestmark = pytest.mark.usefixtures("client")


@pytest.fixture
def start(r: redis.Redis, config: Config, registry: Registry) -> Iterator[Callable[..., Processor]]:
    """Start one processor thread (concurrency 1 unless told): stopped by quiet."""
    loop_threads = LoopThreads()
    with started_processors(r, config, registry, loop_threads) as make:
        yield make
    loop_threads.stop()


# --- fetch.lua ---------------------------------------------------------------
@pytest.mark.parametrize(("length", "share", "want", "taken"), [
    (100, 10, 10, 10),  # deep: a full batch
    (25, 10, 10, 2),    # 25 jobs for 10 processors: 2 each
    (5, 10, 10, 1),     # shallow: one at a time, so that every processor gets work
    (5, 0, 10, 5),      # share 0: as many as asked
])
def test_fetch_takes_a_batch_only_from_a_deep_queue(
    r: redis.Redis, length: int, share: int, want: int, taken: int
) -> None:
    r.lpush("queue:a", *[f"j{i}".encode() for i in range(length)])

    got = Scripts(r).fetch(INFLIGHT, ["queue:a"], want, share=share)

    assert [raw for _, raw in got] == [f"j{i}".encode() for i in range(taken)]
    assert r.llen(INFLIGHT) == taken and r.llen("queue:a") == length - taken


def test_fetch_acknowledges_several_jobs_first(r: redis.Redis) -> None:
    r.lpush(INFLIGHT, b"done1", b"running", b"done2")
    r.lpush("queue:a", b"next")

    got = Scripts(r).fetch(INFLIGHT, ["queue:a"], 1, acks=[b"done1", b"done2"])

    assert got == [("queue:a", b"next")]
    assert r.lrange(INFLIGHT, 0, -1) == [b"next", b"running"]


def test_flush_acks_writes_every_processors_acknowledgements_at_once(
    r: redis.Redis, config: Config, registry: Registry
) -> None:
    launcher = Launcher(config.replace(concurrency=3), hooks=Hooks(), registry=registry)
    launcher.manager.processors = [launcher._processor(i) for i in range(3)]
    inflight = f"roadie:inflight:{launcher.identity}"
    r.lpush(inflight, b"a1", b"b1", b"running", b"b2", b"c1")
    for p, acks in zip(launcher.manager.processors, ([b"a1"], [b"b1", b"b2"], [b"c1"]),
                       strict=True):
        p.supply.acks.restore(acks)
    launcher.fetcher.ack_many([b"none", b"such"])  # loads the script
    commands = r.info("commandstats")["cmdstat_evalsha"]["calls"]

    assert launcher.manager.flush_acks(older_than=0.0) == 4

    assert r.lrange(inflight, 0, -1) == [b"running"]
    assert all(p.supply.acks.raws == [] for p in launcher.manager.processors)
    # One round trip (the fetch script taking nothing) for all three processors.
    assert r.info("commandstats")["cmdstat_evalsha"]["calls"] == commands + 1
    for p in launcher.manager.processors:
        p.fetcher.redis.close()


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


# --- the processor -------------------------------------------------------------
@pytest.mark.speedup("batch")
def test_a_batch_is_in_flight_in_redis_before_its_first_job_runs(
    r: redis.Redis, registry: Registry, start: Callable[..., Processor]
) -> None:
    seen: list[tuple[int, int]] = []

    class Look(Job, registry=registry, name="Look"):
        def perform(self, i: int) -> None:
            seen.append((i, r.llen(INFLIGHT)))

    Look.perform_bulk([[i] for i in range(5)])
    proc = start()
    wait_until(lambda: len(seen) == 5, message="the five jobs did not run")
    wait_until(lambda: r.llen(INFLIGHT) == 0, message="the batch was not acknowledged")

    # One fetch took all five (concurrency 1: the queue was deep enough), in order,
    # and all five sat in the in-flight list while the first ran.
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert seen[0] == (0, 5)
    assert not proc.supply.batch and proc.supply.acks.raws == []


def test_a_processor_takes_slow_jobs_one_at_a_time(
    r: redis.Redis, registry: Registry, start: Callable[..., Processor]
) -> None:
    seen: list[int] = []

    class Slowish(Job, registry=registry, name="Slowish"):
        def perform(self, i: int) -> None:
            seen.append(r.llen(INFLIGHT))
            time.sleep(HOLD_S)  # the job's own work: as long as a batch may hold

    proc = start()
    proc.pace.job_s = HOLD_S  # it has timed jobs this slow already
    Slowish.perform_bulk([[i] for i in range(4)])
    wait_until(lambda: len(seen) == 4, message="the four jobs did not run")

    # Each job was alone in flight: a processor holds no slow job that another
    # processor could be running.
    assert seen == [1, 1, 1, 1]
    assert proc.pace.job_s >= HOLD_S * 0.9
    assert proc.supply.batch_size() == 1


@pytest.mark.parametrize(("job_s", "size"), [
    (0.0, 10),                     # instant jobs (or none timed yet): a full batch
    (HOLD_S / 10, 10),             # a full batch is HOLD_S of work
    (HOLD_S / 4, 4),               # about HOLD_S of work
    (HOLD_S * 3, 1),               # slow: one at a time
])
@pytest.mark.speedup("batch")
def test_batch_size_holds_about_hold_s_of_work(
    r: redis.Redis, config: Config, registry: Registry, job_s: float, size: int
) -> None:
    proc = make_processor(r, config.replace(concurrency=1), registry)
    proc.pace.job_s = job_s
    assert proc.supply.batch_size() == size


@pytest.mark.speedup("batch", "deferred_ack")
def test_finished_jobs_are_acknowledged_while_a_long_one_runs(
    r: redis.Redis, config: Config, registry: Registry, release: threading.Event
) -> None:
    ran: list[int] = []

    class Mixed(Job, registry=registry, name="Mixed"):
        def perform(self, i: int) -> None:
            ran.append(i)
            if i == 1:
                release.wait(30)

    launcher = Launcher(config.replace(concurrency=1, timeout_s=5.0), hooks=Hooks(),
                        registry=registry)
    inflight = f"roadie:inflight:{launcher.identity}"
    Mixed.perform_bulk([[i] for i in range(3)])
    stopper = threading.Thread(target=launcher.run, daemon=True)
    launcher.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    stopper.start()
    try:
        wait_until(lambda: ran[-1:] == [1], message="the long job did not start")
        # Job 0 succeeded; its acknowledgement does not wait for the long job 1.
        wait_until(lambda: [loads(x)["args"] for x in r.lrange(inflight, 0, -1)]
                   == [[2], [1]], timeout=5 + ACK_DELAY_S,
                   message="job 0 stayed in flight behind the long job")
        release.set()
        wait_until(lambda: ran == [0, 1, 2] and r.llen(inflight) == 0,
                   message="the batch did not finish")
    finally:
        release.set()
        launcher.stop_requested.set()
        stopper.join(15)
    assert not stopper.is_alive()
    assert r.get("stat:processed") == b"3"


@pytest.mark.speedup("batch")
def test_quiet_pushes_back_the_jobs_of_a_batch_not_started(
    r: redis.Redis, registry: Registry, start: Callable[..., Processor],
    release: threading.Event,
) -> None:
    ran: list[int] = []

    class Slow(Job, registry=registry, name="Slow"):
        def perform(self, i: int) -> None:
            ran.append(i)
            release.wait(30)

    Slow.perform_bulk([[i] for i in range(4)])
    proc = start()
    wait_until(lambda: ran == [0], message="the first job did not start")
    assert [loads(x)["args"] for x in r.lrange("queue:default", 0, -1)] == []
    proc.state.quiet.set()
    release.set()
    proc.thread.join(10)

    assert ran == [0]
    assert r.llen(INFLIGHT) == 0
    # Back at the front of the queue in their order: job 1 runs next.
    assert [loads(x)["args"] for x in r.lrange("queue:default", 0, -1)] == [[3], [2], [1]]


def test_hard_stop_pushes_back_the_batch_and_acknowledges_what_succeeded(
    r: redis.Redis, config: Config, registry: Registry, release: threading.Event
) -> None:
    ran: list[int] = []

    class Stuck(Job, registry=registry, name="Stuck"):
        def perform(self, i: int) -> None:
            ran.append(i)
            if i == 1:
                release.wait(30)

    launcher = Launcher(config.replace(concurrency=1, timeout_s=0.3), hooks=Hooks(),
                        registry=registry)
    inflight = f"roadie:inflight:{launcher.identity}"
    Stuck.perform_bulk([[i] for i in range(4)])
    launcher.start()
    wait_until(lambda: ran == [0, 1], message="job 1 did not start")
    launcher.stop()
    release.set()

    assert launcher.hard_stopped and launcher.requeued == 1
    assert r.llen(inflight) == 0
    # Job 0 succeeded (acknowledged, not pushed back); the stuck job 1 runs next,
    # then 2 and 3, which were never started.
    assert [loads(x)["args"] for x in r.lrange("queue:default", 0, -1)] == [[3], [2], [1]]
    assert r.get("stat:processed") == b"2" and r.get("stat:failed") == b"1"


# --- roadie.redis_client() ------------------------------------------------------
def test_redis_client_is_one_connection_per_thread(r: redis.Redis, client: Client) -> None:
    mine = roadie.redis_client()
    assert roadie.redis_client() is mine
    other: list[Any] = []
    t = threading.Thread(target=lambda: other.append(roadie.redis_client()))
    t.start()
    t.join(5)

    assert other and other[0] is not mine
    mine.set("written-by-job", b"1")
    assert r.get("written-by-job") == b"1"  # the default client's Redis
    assert mine.connection is not None  # a single, dedicated connection


def test_redis_client_follows_a_new_default_client(config: Config, client: Client) -> None:
    first = roadie.redis_client()
    roadie.configure(config)
    try:
        assert roadie.redis_client() is not first
    finally:
        roadie.configure(client=client)


@pytest.mark.speedup("lend_connection")
@pytest.mark.parametrize("same_redis", [True, False])
def test_a_processor_lends_its_connection_to_its_jobs(
    r: redis.Redis, config: Config, registry: Registry, client: Client,
    monkeypatch: pytest.MonkeyPatch, same_redis: bool,
) -> None:
    # The default client on other settings: no lending.
    other = Client(config.replace(socket_timeout_s=config.socket_timeout_s + 1))
    default = roadie.current.using(client if same_redis else other)
    used: list[tuple[str, Any]] = []

    class Borrow(Job, registry=registry, name="Borrow"):
        def perform(self, i: int) -> None:
            mine = roadie.redis_client()
            mine.incr("borrowed")
            used.append((threading.current_thread().name, mine))

    launcher = Launcher(config.replace(concurrency=2), hooks=Hooks(), registry=registry)
    with default:
        launcher.start()
        try:
            Borrow.perform_bulk([[i] for i in range(6)])
            wait_until(lambda: len(used) == 6, message="the six jobs did not run")
            fetchers = {p.thread.name: p.fetcher.redis for p in launcher.manager.processors}
        finally:
            launcher.stop()

    assert r.get("borrowed") == b"6"
    for thread, mine in used:
        assert (mine is fetchers[thread]) is same_redis
    # One client per thread either way.
    assert len({id(mine) for _, mine in used}) == len({thread for thread, _ in used})


def test_a_job_that_crashes_its_processor_is_buried_not_requeued(
    r: redis.Redis, registry: Registry, start: Callable[..., Processor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Boom(Job, registry=registry, name="Boom"):
        def perform(self, i: int) -> None:
            if i == 0:
                raise ValueError("job failure")

    def broken_fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug on the failure path")  # escapes process()

    monkeypatch.setattr(Outcomes, "failed", broken_fail)
    Boom.perform_bulk([[i] for i in range(3)])
    [crasher_raw] = [raw for raw in r.lrange("queue:default", 0, -1)
                     if loads(raw)["args"] == [0]]
    proc = start()
    proc.thread.join(10)

    assert not proc.thread.is_alive()
    # The crasher is in the dead set byte for byte; the two jobs of its batch that
    # never started are back in the queue, in order; nothing is left in flight.
    assert r.zrange("dead", 0, -1) == [crasher_raw]
    assert [loads(x)["args"] for x in r.lrange("queue:default", 0, -1)] == [[2], [1]]
    assert r.llen(INFLIGHT) == 0


# --- sharing the jobs of a process ------------------------------------------------
def test_an_idle_processor_runs_a_job_waiting_in_a_busy_siblings_batch(
    r: redis.Redis, config: Config, registry: Registry, release: threading.Event
) -> None:
    ran: dict[int, str] = {}

    class Held(Job, registry=registry, name="Held"):
        def perform(self, i: int) -> None:
            ran[i] = threading.current_thread().name
            if i == 0:
                release.wait(30)

    launcher = Launcher(config.replace(concurrency=2, timeout_s=5.0), hooks=Hooks(),
                        registry=registry)
    inflight = f"roadie:inflight:{launcher.identity}"
    # 4 jobs for 2 processors: each gets 2 at start (processor.deal), so one job
    # waits in the batch of the processor that runs job 0.
    Held.perform_bulk([[i] for i in range(4)])
    launcher.start()
    try:
        wait_until(lambda: sorted(ran) == [0, 1, 2, 3],
                   message="a job stayed behind the running job 0")
        # All of them ran while job 0 was still running: the one in its batch was
        # taken by the other processor.
        assert not release.is_set() and len(set(ran.values())) == 2
        assert r.llen("queue:default") == 0
        # A processor that ran jobs before taking job 0 holds their acknowledgements
        # while job 0 runs: the launcher's main loop (not running in this test)
        # writes those.
        wait_until(lambda: launcher.manager.flush_acks() >= 0 and r.llen(inflight) == 1,
                   timeout=5 + ACK_DELAY_S,
                   message="the three finished jobs were not acknowledged")
    finally:
        release.set()
        launcher.stop()
    assert not launcher.hard_stopped
    assert r.get("stat:processed") == b"4" and r.llen(inflight) == 0


def test_take_batch_and_a_thief_never_get_the_same_job(
    r: redis.Redis, config: Config, registry: Registry
) -> None:
    owner = make_processor(r, config, registry).supply
    thief = make_processor(r, config, registry).supply
    thief.siblings = lambda: [thief, owner]  # the thief is processor 0, the owner 1
    # Switch threads as often as the interpreter can, so the two pop at once.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    all_stolen = all_taken = 0
    try:
        for round_ in range(50):
            raws = [f"{round_}-{i}".encode() for i in range(2000)]
            owner.batch.extend(UnitOfWork("queue:default", raw) for raw in raws)
            stolen: list[bytes] = []
            together = threading.Barrier(2)

            def steal() -> None:
                together.wait(5)
                while (uow := thief._steal()) is not None:
                    stolen.append(uow.raw)

            t = threading.Thread(target=steal)
            t.start()
            together.wait(5)
            taken = [u.raw for u in owner.take_batch()]
            t.join(5)
            # Every job is in exactly one place.
            assert sorted(taken + stolen) == sorted(raws)
            assert not owner.batch
            all_stolen += len(stolen)
            all_taken += len(taken)
    finally:
        sys.setswitchinterval(before)
    # Both sides took jobs: the check above saw them race.
    assert all_stolen > 0 and all_taken > 0
