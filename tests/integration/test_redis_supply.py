"""server/supply/supply.py: what a processor takes next. A batch of jobs from a deep
queue in one round trip (in flight before the first runs), its size from the jobs'
pace, acknowledgements held and written together, and an idle processor taking a job
from a busy sibling's batch; without weakening reliable fetch."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import pytest
import redis
from integration_support import INFLIGHT, loads, make_processor
from support.wait import wait_until

from roadie.config import Config
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.fetch import UnitOfWork
from roadie.server.launcher import Launcher
from roadie.server.processor import Processor
from roadie.server.supply.acks import ACK_DELAY_S
from roadie.server.supply.supply import HOLD_S

#: Every test pushes through the test's Redis (the ``client`` fixture, conftest.py).
pytestmark = pytest.mark.usefixtures("client")


# --- a processor's batch ---------------------------------------------------------
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


@pytest.mark.speedup("steal")
def test_take_batch_and_a_thief_never_get_the_same_job(
    r: redis.Redis, config: Config, registry: Registry
) -> None:
    owner = make_processor(r, config, registry).supply
    thief = make_processor(r, config, registry).supply
    thief.siblings = lambda: [thief, owner]  # the thief is processor 0, the owner 1
    # Switch threads as often as the interpreter can, so the two pop at once.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    deadline = time.monotonic() + 30
    rounds = 0
    try:
        while True:  # until a round in which both took jobs: then they raced
            rounds += 1
            raws = [f"{rounds}-{i}".encode() for i in range(20_000)]
            owner.batch.extend(UnitOfWork("queue:default", raw) for raw in raws)
            stolen: list[bytes] = []
            stealing = threading.Event()

            def steal() -> None:
                while (uow := thief._steal()) is not None:
                    stolen.append(uow.raw)
                    stealing.set()
                stealing.set()

            t = threading.Thread(target=steal)
            t.start()
            stealing.wait(5)  # the thief is at it: the owner empties its batch meanwhile
            taken = [u.raw for u in owner.take_batch()]
            t.join(5)
            # Every job is in exactly one place.
            assert sorted(taken + stolen) == sorted(raws)
            assert not owner.batch
            if stolen and taken:
                break
            assert time.monotonic() < deadline, (
                f"in {rounds} rounds the owner and the thief never both took jobs")
    finally:
        sys.setswitchinterval(before)
