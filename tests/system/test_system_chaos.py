"""Chaos: processes killed with -9 at random while they work; nothing is lost.

``ROADIE_CHAOS_JOBS`` sets the number of jobs (1,000 by default, for CI);
``benchmarks/chaos.py`` is the same run as a standalone script with a full account.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import time

import pytest
import redis
import sysjobs
from support.procs import Harness, Proc
from support.redis import left_anywhere

import roadie

pytestmark = pytest.mark.system

JOBS = int(os.environ.get("ROADIE_CHAOS_JOBS", "1000"))
PROCESSES = 3
KILL_EVERY_S = 1.0
#: Chaos kills can catch a job in flight many times; they must never bury it.
CHAOS_ENV = {
    "ROADIE_HEARTBEAT_INTERVAL_S": "0.5",
    "ROADIE_PROCESS_TTL_S": "2",
    "ROADIE_JANITOR_INTERVAL_S": "0.5",
    "ROADIE_MAX_CRASHES": "1000000",
}


def test_random_kill_9_loses_nothing(procs: Harness, r: redis.Redis,
                                     client: roadie.Client) -> None:
    rng = random.Random()
    jids = sysjobs.Record.perform_bulk([[100] for _ in range(JOBS)])
    assert len(set(jids)) == JOBS

    def start() -> Proc:
        return procs.spawn("-c", "4", env=CHAOS_ENV, r=r)

    slots = [start() for _ in range(PROCESSES)]
    t0 = time.monotonic()
    deadline = t0 + 60 + JOBS / 25
    kills: list[tuple[float, str]] = []  # (kill time, victim's in-flight key)
    recovered: list[float] = []
    next_kill = t0 + KILL_EVERY_S

    def done() -> bool:
        return int(r.hlen(sysjobs.RUNS)) == JOBS and left_anywhere(r)["inflight"] == 0

    while not done():
        now = time.monotonic()
        assert now < deadline, (
            f"chaos did not finish: {r.hlen(sysjobs.RUNS)} of {JOBS} ran, "
            f"left {left_anywhere(r)}, {len(kills)} kills"
        )
        # A kill about once a second, while there is still work to be caught in flight.
        if now >= next_kill and r.llen("queue:default") > 0:
            i = rng.randrange(len(slots))
            victim = slots[i]
            key = f"roadie:inflight:{victim.identity}"
            at = victim.kill()
            if r.llen(key) > 0:
                kills.append((at, key))
            slots[i] = start()
            next_kill = at + KILL_EVERY_S * (0.5 + rng.random())
        for at, key in list(kills[len(recovered):]):
            if r.exists(key):
                break
            recovered.append(time.monotonic() - at)
        time.sleep(0.02)

    total_s = time.monotonic() - t0
    runs = sysjobs.runs(r)
    left = left_anywhere(r)
    lost = len(set(jids) - set(runs))
    duplicates = sum(runs.values()) - len(runs)
    rec = (f"median {statistics.median(recovered):.2f}s, max {max(recovered):.2f}s"
           if recovered else "n/a")
    print(f"\nchaos: pushed {JOBS}, runs {sum(runs.values())}, duplicates {duplicates}, "
          f"lost {lost}, left {sum(left.values())}, kills {len(kills)} with jobs in flight, "
          f"kill->recovered {rec}, {total_s:.1f}s")
    assert lost == 0
    assert set(runs) == set(jids)
    assert left == {"queues": 0, "inflight": 0, "schedule": 0, "retry": 0, "dead": 0}
    assert len(kills) >= 3, "too few kills caught jobs in flight to prove anything"
    # Every kill with jobs in flight caused at least one duplicate... or none, if the
    # job had not written its record yet; but never more than the jobs in flight.
    assert duplicates <= 4 * len(kills)

    for p in slots:
        p.send(signal.SIGTERM)
    for p in slots:
        assert p.wait_exit(15) == 0
    # The killed ones stay listed until their hash expires, as in Sidekiq.
    assert not any(r.sismember("processes", p.identity) for p in slots)
