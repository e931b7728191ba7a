"""Scenario 4: the network between roadie and Redis cut, stalled and slowed.

The roadie processes reach Redis through ``tcpproxy.TcpProxy``; the jobs count their
runs on a direct line (``FAULTS_REDIS_URL``), so the faults hit roadie only.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import faultjobs
import pytest
import redis
from fault_support import FAULT_ENV, account, finished_count, scale, soak, wait_drained
from support.procs import Harness
from support.wait import wait_until
from tcpproxy import TcpProxy

from roadie.embedded import RedisServer

pytestmark = pytest.mark.system

SOCKET_TIMEOUT_S = 3.0


def noticed(procs: Harness, since: dict[str, int]) -> bool:
    """Some process logged a new "unreachable" since ``since`` was taken."""
    return any(p.output().count("is unreachable") > since.get(p.name, 0) for p in procs.procs)


def recovered(procs: Harness) -> bool:
    """Every process that logged an outage has logged its end too."""
    return all(p.output().count("is back after") >= p.output().count("is unreachable")
               for p in procs.procs)


def counts(procs: Harness) -> dict[str, int]:
    return {p.name: p.output().count("is unreachable") for p in procs.procs}


def test_network_cut_stalled_and_slowed(
    redis_server: RedisServer, make_harness: Callable[..., Harness],
    proxy_factory: Callable[[int], TcpProxy], use_client: Callable[[str], object],
) -> None:
    url = redis_server.url
    use_client(url)
    r = redis.Redis.from_url(url)
    proxy = proxy_factory(redis_server.port)
    jobs = scale(1500)
    t0 = time.monotonic()
    jids = faultjobs.Count.perform_bulk([[20] for _ in range(jobs)])
    procs = make_harness(proxy.url, {**FAULT_ENV, "FAULTS_REDIS_URL": url,
                                      "ROADIE_SOCKET_TIMEOUT_S": str(SOCKET_TIMEOUT_S)})
    for _ in range(2):
        procs.spawn("-c", "5", r=r)

    figures: dict[str, float] = {}
    done_at_delays: list[int] = []
    rounds = scale(1)
    for i in range(rounds):
        step = jobs // (3 * rounds + 2)

        def reach(n: int) -> None:
            wait_until(lambda: finished_count(r) >= n, 60, 0.01, f"{n} jobs never finished")

        reach(step * (3 * i + 1))
        before = counts(procs)
        proxy.cut()
        began = time.monotonic()
        wait_until(lambda before=before: noticed(procs, before), 20, 0.05,
                   "no process noticed the cut")
        while time.monotonic() - began < soak(1.0, 3.0):
            time.sleep(0.05)
        proxy.restore()
        figures["cut_s"] = round(time.monotonic() - began, 2)
        # Each fault starts once the processes are back from the previous one.
        wait_until(lambda: recovered(procs), 30, 0.05, "processes did not recover from the cut")

        reach(step * (3 * i + 2))
        before = counts(procs)
        proxy.stall()
        began = time.monotonic()
        wait_until(lambda before=before: noticed(procs, before), SOCKET_TIMEOUT_S + 10, 0.05,
                   "no process noticed the stall")
        while time.monotonic() - began < SOCKET_TIMEOUT_S + 1:
            time.sleep(0.05)
        proxy.restore()
        figures["stall_s"] = round(time.monotonic() - began, 2)
        wait_until(lambda: recovered(procs), 30, 0.05,
                   "processes did not recover from the stall")

        reach(step * (3 * i + 3))
        proxy.delay(30)
        began = time.monotonic()
        done_before = finished_count(r)
        done_at_delays.append(done_before)
        while time.monotonic() - began < soak(2.0, 6.0):
            time.sleep(0.05)
        slow_rate = (finished_count(r) - done_before) / (time.monotonic() - began)
        proxy.restore()
        if done_before < jobs:  # the rate of a round with jobs left to run
            figures["delayed_jobs_per_s"] = round(slow_rate, 1)
        wait_until(lambda: recovered(procs), 30, 0.05, "processes did not recover")
    assert min(done_at_delays) < jobs, "every job ran before the delay: nothing proven"
    wait_drained(r, jids, soak(90, 300))

    acct = account(r, "network cut / stall / 30 ms delay", jids, t0, rounds=rounds, **figures)
    acct.check()
    assert all(p.alive for p in procs.procs)
    assert proxy.accepted > 2, "the processes did not go through the proxy"
    r.close()
