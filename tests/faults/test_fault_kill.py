"""Scenario 1: processes killed with -9 at random while jobs run, restarted each time."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import faultjobs
import pytest
import redis
from fault_support import FAULT_ENV, account, finished_count, scale, soak, wait_drained
from support.procs import Harness

from roadie.embedded import RedisServer

pytestmark = pytest.mark.system

PROCESSES = 3


def test_random_kill_9_loses_nothing(
    redis_server: RedisServer, make_harness: Callable[..., Harness],
    use_client: Callable[[str], object],
) -> None:
    url = redis_server.url
    use_client(url)
    r = redis.Redis.from_url(url)
    rng = random.Random()
    jobs = scale(800)
    t0 = time.monotonic()
    jids = faultjobs.Count.perform_bulk([[80] for _ in range(jobs)])
    procs = make_harness(url, FAULT_ENV)
    for _ in range(PROCESSES):
        procs.spawn("-c", "4", r=r)

    deadline = time.monotonic() + soak(60, 600)
    kills = 0
    while finished_count(r) < jobs * 0.9:
        assert time.monotonic() < deadline, f"only {finished_count(r)}/{jobs} finished"
        # Wait 0.4 to 1.2 s (polling, so a finished run ends the loop early).
        until = time.monotonic() + rng.uniform(0.4, 1.2)
        while time.monotonic() < until and finished_count(r) < jobs * 0.9:
            time.sleep(0.05)
        alive = procs.alive()
        victim = rng.choice(alive)
        victim.kill()
        kills += 1
        procs.spawn("-c", "4")  # not waiting for it: the kills go on meanwhile
    wait_drained(r, jids, soak(60, 120))

    acct = account(r, "kill -9 at random", jids, t0, processes=PROCESSES, kills=kills)
    # A kill re-runs the jobs its process was running (interrupted) and the ones that
    # had finished but were not acknowledged yet (finished duplicates): a processor
    # acknowledges with its next fetch, or the main loop after 0.05 s, so each of the 4
    # processors holds at most a few 80 ms successes at any time.
    acct.check(max_duplicates=kills * 4 * 3)
    assert kills >= 3, "too few kills to prove anything"
    r.close()
