"""Redis restarts under a busy process: it waits, comes back by itself, loses nothing."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest
import redis
import sysjobs
from support.redis import left_anywhere
from support.wait import wait_until

import roadie
from roadie.embedded import RedisServer

pytestmark = pytest.mark.system

JOBS = 2000


def answers(r: redis.Redis) -> bool:
    try:
        return bool(r.ping())
    except (redis.BusyLoadingError, redis.ConnectionError):
        return False


def test_processing_resumes_by_itself_after_a_redis_restart(
    redis_server: RedisServer, make_harness: Callable[..., object],
    use_client: Callable[[str], roadie.Client],
) -> None:
    url = redis_server.url
    use_client(url)
    r = redis.Redis.from_url(url)
    procs = make_harness(url)
    jids = set(sysjobs.Record.perform_bulk([[2] for _ in range(JOBS)]))
    assert len(jids) == JOBS
    p = procs.spawn("-c", "10", r=r)

    def ran() -> int:
        return int(r.hlen(sysjobs.RUNS))

    wait_until(lambda: ran() >= JOBS // 4, 30, 0.01, "processing did not start")
    r.close()
    t0 = time.monotonic()
    redis_server.stop()  # SIGTERM: the AOF is flushed
    # Stay down until the process has noticed: a restart quicker than its next
    # command would be absorbed by one reconnect, and prove nothing about outages.
    wait_until(lambda: "is unreachable" in p.output(), 20, 0.05,
               "the roadie process did not notice that Redis went away")
    redis_server.start()  # same port and folder: the AOF is loaded
    down_s = time.monotonic() - t0
    r = redis.Redis.from_url(url)
    wait_until(lambda: answers(r), 30, message="Redis did not finish loading its AOF")
    at_restart = ran()
    assert at_restart < JOBS, "all jobs ran before the restart; the test proves nothing"

    try:
        wait_until(lambda: ran() == JOBS, 60, 0.05, "processing did not resume")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {ran()} of {JOBS} ran; left: {left_anywhere(r)}") from None
    wait_until(lambda: left_anywhere(r)["inflight"] == 0, 10, message="in-flight not emptied")
    runs = sysjobs.runs(r)
    duplicates = sum(runs.values()) - len(runs)
    print(f"Redis restarted in {down_s:.2f}s with {at_restart}/{JOBS} jobs run; "
          f"all {JOBS} ran afterwards, {duplicates} twice")
    assert set(runs) == jids
    assert min(runs.values()) == 1
    assert left_anywhere(r) == {"queues": 0, "inflight": 0, "schedule": 0, "retry": 0,
                                "dead": 0}
    assert p.alive

    p.send(signal.SIGTERM)
    assert p.wait_exit(15) == 0
    # One line when Redis goes away and one when it is back, not one per thread or
    # per retry. While Redis shuts down it may still answer a connection it had for a
    # moment after refusing new ones: that shows as one short flap ("back after 0.0
    # s", then unreachable again), so at most two outages, each one closed.
    out = p.output()
    events = [line for line in out.splitlines()
              if "is unreachable" in line or "is back after" in line]
    assert 1 <= len(events) // 2 <= 2 and len(events) % 2 == 0, out
    assert all("is unreachable" in e for e in events[0::2]), out
    assert all("is back after" in e for e in events[1::2]), out
    # Counted once per run; a job's own write (HINCRBY) retried across the restart can
    # count twice in sys:runs, so the exact account is the set of jids above.
    assert int(r.get("stat:processed") or 0) >= JOBS
    r.close()
