"""server/manager.py: a process's processors through their life. The held
acknowledgements of all of them flushed in one round trip, and a hard stop (the
stop's timeout passed): the running jobs and their unstarted batches pushed back,
their successes acknowledged, their runs ended without writing an outcome."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
import redis
from integration_support import loads, processors_exited
from support.wait import wait_until

from roadie.config import Config
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.launcher import Launcher
from roadie.server.stretch import LOOP_WAIT_SLICE_S

#: Every test pushes through the test's Redis (the ``client`` fixture, conftest.py).
pytestmark = pytest.mark.usefixtures("client")


# --- held acknowledgements -------------------------------------------------------
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


# --- the hard stop ----------------------------------------------------------------
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


def test_stop_pushes_a_job_still_running_back_to_the_front(
    r: redis.Redis, registry: Registry, launch: Callable[..., Launcher],
    release: threading.Event,
) -> None:
    started = threading.Event()
    finished: list[str] = []

    class Slow(Job, registry=registry, name="Slow"):
        def perform(self, label: str) -> None:
            started.set()
            release.wait(30)
            finished.append(label)

    launcher = launch(concurrency=1, timeout_s=0.3)
    inflight = f"roadie:inflight:{launcher.identity}"
    Slow.perform_async("slow")
    wait_until(started.is_set, message="the slow job did not start")
    [running_raw] = r.lrange(inflight, 0, -1)
    Slow.perform_async("later")  # waits behind it: concurrency 1

    t0 = time.monotonic()
    launcher.stop()
    elapsed = time.monotonic() - t0

    assert 0.3 <= elapsed < 5.0
    assert launcher.hard_stopped and launcher.requeued == 1
    assert r.exists(inflight) == 0
    queue = r.lrange("queue:default", 0, -1)
    assert queue[-1] == running_raw  # byte-identical, at the tail: runs next
    assert [loads(raw)["args"] for raw in queue] == [["later"], ["slow"]]
    # The interrupted attempt counts as processed and failed, as in Sidekiq.
    assert r.get("stat:processed") == b"1" and r.get("stat:failed") == b"1"

    # The abandoned run is ended by Shutdown as soon as it returns to Python code,
    # before it does any more work, and it writes no outcome.
    release.set()
    wait_until(lambda: processors_exited(launcher), message="processor did not exit")
    assert finished == []
    assert r.lrange("queue:default", 0, -1) == queue
    assert r.exists(inflight, "retry", "dead") == 0


def test_stop_ends_an_async_job_it_pushed_back(
    r: redis.Redis, registry: Registry, launch: Callable[..., Launcher],
    release: threading.Event,
) -> None:
    started = threading.Event()
    finished: list[str] = []
    cancelled: list[str] = []

    class SlowAsync(Job, registry=registry, name="SlowAsync"):
        async def perform(self, label: str) -> None:
            started.set()
            try:
                while not release.is_set():
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                cancelled.append(label)
                raise
            finished.append(label)

    launcher = launch(concurrency=1, timeout_s=0.3)
    inflight = f"roadie:inflight:{launcher.identity}"
    SlowAsync.perform_async("slow")
    wait_until(started.is_set, message="the async job did not start")
    [running_raw] = r.lrange(inflight, 0, -1)

    launcher.stop()

    assert launcher.hard_stopped and launcher.requeued == 1
    assert r.lrange("queue:default", 0, -1) == [running_raw]
    # The processor waiting for the coroutine gets the launcher's Shutdown (the
    # cancellation wakes it, well before its wait's own time-out), and the coroutine
    # is cancelled: the pushed-back job cannot also finish here.
    wait_until(lambda: processors_exited(launcher), timeout=LOOP_WAIT_SLICE_S / 2,
               message="processor did not exit")
    wait_until(lambda: cancelled == ["slow"], message="the coroutine was not cancelled")
    release.set()
    assert finished == []
    assert r.exists(inflight, "retry", "dead") == 0
