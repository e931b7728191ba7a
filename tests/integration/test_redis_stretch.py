"""server/stretch.py: ``async def perform`` jobs run as tasks of the event loop. A
processor hands its batch of async jobs to the loop once, not once per job, and
everything else about a job (its outcome, its log lines, quiet, middleware) stays as
on the thread path."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import redis
from integration_support import INFLIGHT, LoopThreads, loads
from support.wait import wait_until

from roadie.job import Job
from roadie.log import PlainFormatter
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.retry import malformed_original
from roadie.server.asyncloop import LoopThread
from roadie.server.processor import Processor

LOOP = "roadie.asyncio"

pytestmark = pytest.mark.usefixtures("client")


class CountingLoopThreads(LoopThreads):
    """Counts the hand-offs from processor threads to the event loop."""

    def __init__(self) -> None:
        super().__init__()
        self.handoffs = 0

    def __call__(self) -> LoopThread:
        runner = super().__call__()
        self.handoffs += 1
        return runner


@pytest.fixture
def loop_threads() -> Iterator[CountingLoopThreads]:
    """Overrides conftest.py's: the processors ``start`` makes count their hand-offs."""
    loop_threads = CountingLoopThreads()
    yield loop_threads
    loop_threads.stop()


@pytest.mark.speedup("batch", "loop_fetch")
def test_a_batch_of_async_jobs_is_handed_to_the_loop_once(
    r: redis.Redis, registry: Registry, loop_threads: CountingLoopThreads,
    start: Callable[..., Processor],
) -> None:
    ran: list[tuple[int, str]] = []

    class Coro(Job, registry=registry, name="Coro"):
        async def perform(self, i: int) -> None:
            await asyncio.sleep(0)
            ran.append((i, threading.current_thread().name))

    Coro.perform_bulk([[i] for i in range(6)])
    proc = start()
    wait_until(lambda: len(ran) == 6 and r.llen(INFLIGHT) == 0,
               message="the batch did not run and get acknowledged")

    assert ran == [(i, LOOP) for i in range(6)]
    assert loop_threads.handoffs == 1  # one fetch of six, one hand-off for the six
    assert proc.state.take_counts() == (6, 0)


@pytest.mark.speedup("batch")
def test_the_thread_fetches_the_next_batch_while_the_loop_runs_the_last_job(
    r: redis.Redis, registry: Registry, loop_threads: CountingLoopThreads,
    start: Callable[..., Processor],
) -> None:
    ran: list[int] = []
    procs: list[Processor] = []

    class Coro(Job, registry=registry, name="Coro"):
        async def perform(self, i: int) -> None:
            ran.append(i)
            if i == 0:  # after the first fetch: the next batch
                Coro.perform_bulk([[6], [7], [8]])
            if i == 5:  # the last of the first batch: wait for the next one to arrive
                deadline = time.monotonic() + 10
                while not procs[0].supply.batch and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)

    Coro.perform_bulk([[i] for i in range(6)])
    procs.append(start())
    wait_until(lambda: len(ran) == 9 and r.llen(INFLIGHT) == 0,
               message="the two batches did not run")

    assert ran == list(range(9))
    assert loop_threads.handoffs == 1  # the loop went on from one batch to the next


def test_a_mixed_batch_runs_every_job_once_where_it_belongs(
    r: redis.Redis, registry: Registry, start: Callable[..., Processor],
) -> None:
    ran: list[tuple[str, str]] = []

    class Coro(Job, registry=registry, name="Coro"):
        async def perform(self, tag: str) -> None:
            await asyncio.sleep(0)
            if tag == "boom":
                raise ValueError("async boom")
            ran.append((tag, threading.current_thread().name))

    class Plain(Job, registry=registry, name="Plain"):
        def perform(self, tag: str) -> None:
            ran.append((tag, threading.current_thread().name))

    Coro.perform_async("a1")
    Coro.perform_async("a2")
    Plain.perform_async("s1")
    Coro.perform_async("boom")
    r.lpush("queue:default", b"{not json")
    r.lpush("queue:default", b'{"class":"Nowhere","args":[],"jid":"abc123","queue":"default"}')
    Coro.perform_async("a3")
    start()
    wait_until(lambda: len(ran) == 4 and r.llen(INFLIGHT) == 0 and r.zcard("retry") == 2,
               message="the mixed batch did not finish")

    assert ran == [("a1", LOOP), ("a2", LOOP), ("s1", "roadie.processor-0"), ("a3", LOOP)]
    retried = {loads(x)["class"]: loads(x) for x in r.zrange("retry", 0, -1)}
    assert retried["Coro"]["args"] == ["boom"]
    assert (retried["Coro"]["error_class"], retried["Coro"]["error_message"]) == (
        "ValueError", "async boom")
    assert retried["Nowhere"]["error_class"] == "roadie.errors.UnknownJobError"
    [buried] = r.zrange("dead", 0, -1)
    assert malformed_original(orjson.loads(buried)) == b"{not json"
    assert r.llen("queue:default") == 0


def test_server_middleware_still_wraps_async_jobs(
    r: redis.Redis, registry: Registry, loop_threads: CountingLoopThreads,
    start: Callable[..., Processor],
) -> None:
    events: list[tuple[str, Any]] = []

    def middleware(job: Job, payload: Any, queue: str, call: Callable[[], None]) -> None:
        events.append(("before", payload["args"][0]))
        call()
        events.append(("after", payload["args"][0]))

    class Coro(Job, registry=registry, name="Coro"):
        async def perform(self, i: int) -> None:
            await asyncio.sleep(0)
            events.append(("run", threading.current_thread().name))

    hooks = Hooks()
    hooks.server_middleware.append(middleware)
    Coro.perform_bulk([[0], [1]])
    start(hooks)
    wait_until(lambda: len(events) == 6 and r.llen(INFLIGHT) == 0,
               message="the jobs did not run")

    assert events == [("before", 0), ("run", LOOP), ("after", 0),
                      ("before", 1), ("run", LOOP), ("after", 1)]
    assert loop_threads.handoffs == 2  # one per job: a middleware wraps a synchronous call


def test_quiet_during_an_async_job_pushes_back_the_rest_of_its_batch(
    r: redis.Redis, registry: Registry, start: Callable[..., Processor],
    release: threading.Event,
) -> None:
    ran: list[int] = []

    class Held(Job, registry=registry, name="Held"):
        async def perform(self, i: int) -> None:
            ran.append(i)
            while not release.is_set():
                await asyncio.sleep(0.005)

    Held.perform_bulk([[i] for i in range(4)])
    proc = start()
    wait_until(lambda: ran == [0], message="the first job did not start")
    proc.state.quiet.set()
    release.set()
    proc.thread.join(10)

    assert not proc.thread.is_alive()
    assert ran == [0]
    assert r.llen(INFLIGHT) == 0
    assert [loads(x)["args"] for x in r.lrange("queue:default", 0, -1)] == [[3], [2], [1]]


def test_log_lines_of_an_async_job_name_its_processor(
    registry: Registry, start: Callable[..., Processor],
) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(PlainFormatter())
    logger = logging.getLogger("roadie")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    done = threading.Event()

    class Coro(Job, registry=registry, name="Coro"):
        async def perform(self) -> None:
            done.set()

    try:
        Coro.perform_async()
        proc = start()
        wait_until(lambda: " INFO: done" in out.getvalue(), message="no done line")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)

    assert done.is_set()
    lines = [x for x in out.getvalue().splitlines() if "class=Coro" in x]
    assert [x.rsplit(" ", 1)[-1] for x in lines] == ["start", "done"]
    for line in lines:
        assert f" tid={proc.runner.tid} " in line
        assert line.count("tid=") == 1
