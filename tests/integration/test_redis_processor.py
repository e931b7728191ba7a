"""server/processor.py: a processor's loop. Quiet ends it, pushing the jobs of its
batch it did not start back to the front of their queues; a crash buries the job that
caused it and returns the rest."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
from integration_support import INFLIGHT, loads
from support.wait import wait_until

from roadie.job import Job
from roadie.registry import Registry
from roadie.server.outcome import Outcomes
from roadie.server.processor import Processor

#: Every test pushes through the test's Redis (the ``client`` fixture, conftest.py).
pytestmark = pytest.mark.usefixtures("client")


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
