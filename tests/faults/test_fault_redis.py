"""Scenario 3: Redis restarted during a run (AOF, appendfsync always), and Redis
paused with SIGSTOP for longer than the client socket timeouts, then resumed."""

from __future__ import annotations

import time
from collections.abc import Callable

import faultjobs
import pytest
import redis
from fault_support import FAULT_ENV, account, finished_count, scale, soak, wait_drained
from support.procs import Harness
from support.wait import wait_until

from roadie.embedded import RedisServer

pytestmark = pytest.mark.system

#: Roadie's socket timeout in these runs (default 5 s); the pause lasts longer.
SOCKET_TIMEOUT_S = 3.0


@pytest.fixture
def aof_always(private_redis: Callable[..., RedisServer]) -> RedisServer:
    return private_redis("--appendfsync", "always", appendonly=True)


def answers(r: redis.Redis) -> bool:
    try:
        return bool(r.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def noticed(procs: Harness) -> bool:
    return any("is unreachable" in p.output() for p in procs.procs)


def test_redis_restart_with_aof_always_loses_nothing(
    aof_always: RedisServer, make_harness: Callable[..., Harness],
    use_client: Callable[[str], object],
) -> None:
    url = aof_always.url
    use_client(url)
    r = redis.Redis.from_url(url)
    assert list(r.config_get("appendfsync").values()) in (["always"], [b"always"])
    jobs = scale(1500)
    t0 = time.monotonic()
    jids = faultjobs.Count.perform_bulk([[5] for _ in range(jobs)])
    procs = make_harness(url, FAULT_ENV)
    for _ in range(2):
        procs.spawn("-c", "5", r=r)
    restarts = scale(1)
    downs = []
    for i in range(restarts):
        target = jobs * (i + 1) // (restarts + 2)
        wait_until(lambda target=target: finished_count(r) >= target, 60, 0.01,
                   "processing did not get going")
        r.close()
        began = time.monotonic()
        aof_always.stop()  # SIGTERM: a clean shutdown
        # Down until a process has noticed: a quick restart is absorbed by a reconnect.
        wait_until(lambda: noticed(procs), 20, 0.05, "no process noticed the outage")
        aof_always.start()
        r = redis.Redis.from_url(url)
        wait_until(lambda: answers(r), 30, message="Redis did not come back")
        downs.append(time.monotonic() - began)
    assert finished_count(r) < jobs, "every job ran before the restart: nothing proven"
    wait_drained(r, jids, soak(90, 300))

    acct = account(r, "Redis restart (AOF always)", jids, t0, restarts=restarts,
                   max_down_s=round(max(downs), 2))
    acct.check()
    assert all(p.alive for p in procs.procs)
    r.close()


def test_redis_paused_longer_than_socket_timeouts(
    redis_server: RedisServer, make_harness: Callable[..., Harness],
    use_client: Callable[[str], object],
) -> None:
    url = redis_server.url
    use_client(url)
    r = redis.Redis.from_url(url)
    jobs = scale(1000)
    pause_s = soak(SOCKET_TIMEOUT_S + 1.5, SOCKET_TIMEOUT_S + 7)
    t0 = time.monotonic()
    jids = faultjobs.Count.perform_bulk([[5] for _ in range(jobs)])
    procs = make_harness(url, {**FAULT_ENV, "ROADIE_SOCKET_TIMEOUT_S": str(SOCKET_TIMEOUT_S)})
    for _ in range(2):
        procs.spawn("-c", "5", r=r)
    wait_until(lambda: finished_count(r) >= jobs // 4, 60, 0.01, "processing did not start")
    redis_server.pause()  # SIGSTOP: connections stay open, nothing answers
    paused_at = time.monotonic()
    try:
        wait_until(lambda: noticed(procs), SOCKET_TIMEOUT_S + 10, 0.05,
                   "no process noticed that Redis stopped answering")
        while time.monotonic() - paused_at < pause_s:
            time.sleep(0.05)
    finally:
        redis_server.resume()
    paused = time.monotonic() - paused_at
    assert finished_count(r) < jobs, "every job ran before the pause: nothing proven"
    wait_drained(r, jids, soak(90, 300))

    acct = account(r, "Redis SIGSTOP > socket timeout", jids, t0,
                   paused_s=round(paused, 2), socket_timeout_s=SOCKET_TIMEOUT_S)
    acct.check()
    assert all(p.alive for p in procs.procs)
    for p in procs.procs:
        out = p.output()
        if "is unreachable" in out:
            assert "is back after" in out, out
    r.close()
