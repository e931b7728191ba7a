"""Scenario 5: jobs longer than the process TTL, and a job that holds the GIL.

A process whose only running jobs take longer than ``process_ttl_s`` (one sleeping,
one stuck in a C call that never releases the GIL) must keep its liveness key, so the
janitor of another process never takes it for dead and runs its jobs a second time.
Killed with -9 in the middle of a GIL hog, its job must still be recovered within
about the TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import faultjobs
import pytest
import redis
from fault_support import account, soak
from support.procs import Harness
from support.wait import wait_until

from roadie.embedded import RedisServer

pytestmark = pytest.mark.system

TTL_S = 2.0


def starts(r: redis.Redis, jid: str) -> int:
    return int(r.hget(faultjobs.STARTS, jid) or 0)


def finished(r: redis.Redis, jid: str) -> int:
    return int(r.hget(faultjobs.RUNS, jid) or 0)


def test_long_and_gil_holding_jobs_keep_their_owner_alive(
    redis_server: RedisServer, make_harness: Callable[..., Harness],
    use_client: Callable[[str], object],
) -> None:
    url = redis_server.url
    use_client(url)
    r = redis.Redis.from_url(url)
    t0 = time.monotonic()
    hog_s = soak(5.0, 12.0)
    procs = make_harness(url, {"ROADIE_PROCESS_TTL_S": str(TTL_S),
                                "ROADIE_MAX_CRASHES": "1000"})
    owner = procs.spawn("-c", "2", r=r)
    long_jid = faultjobs.Long.perform_async(TTL_S * 2.5)
    hog_jid = faultjobs.Hog.perform_async(hog_s)
    wait_until(lambda: starts(r, long_jid) and starts(r, hog_jid), 20, 0.02,
               "the owner did not start both jobs")
    # The observer's janitor sweeps every 0.25 to 0.75 s; it could run the jobs too.
    observer = procs.spawn("-c", "2", r=r)

    wait_until(lambda: finished(r, long_jid) and finished(r, hog_jid), 30 + hog_s * 2,
               0.05, "the long and GIL-holding jobs did not finish")
    [hog] = [e for e in faultjobs_events(r) if e["kind"] == "hog"]
    print(f"GIL held {hog['held']:.2f} s; another thread's longest wait "
          f"{hog['max_gap']:.2f} s (process TTL {TTL_S} s)")
    # The hog really starved the process's other threads, for longer than the TTL.
    assert hog["held"] > TTL_S + 0.5, hog
    assert hog["max_gap"] >= 0.8 * hog["held"], hog
    assert "recovered" not in observer.output(), observer.output()
    assert starts(r, long_jid) == 1 and starts(r, hog_jid) == 1

    # Killed with -9 in the middle of a hog, the owner's job is recovered within the TTL.
    killed_jid = faultjobs.Hog.perform_async(hog_s)
    pid = int(wait_until(lambda: r.hget(faultjobs.HOGGING, killed_jid), 20, 0.02,
                         "the hog did not start"))
    # Whichever process took it is killed, in the middle of its C call.
    [runner] = [p for p in (owner, observer) if p.pid == pid]
    survivor = observer if runner is owner else owner
    killed_at = runner.kill()
    wait_until(lambda: starts(r, killed_jid) == 2, TTL_S + 10, 0.02,
               "the killed process's job was not recovered")
    recovered_s = time.monotonic() - killed_at
    print(f"kill -9 during a GIL hog: job running again {recovered_s:.2f} s later")
    assert recovered_s < TTL_S + 5, recovered_s
    wait_until(lambda: finished(r, killed_jid), 30 + hog_s * 2, 0.05,
               "the recovered hog did not finish")
    assert survivor.alive

    acct = account(r, "liveness: jobs > TTL, GIL hog", [long_jid, hog_jid, killed_jid], t0,
                   gil_held_s=round(hog["held"], 2), gil_max_gap_s=round(hog["max_gap"], 2),
                   kill_recovered_s=round(recovered_s, 2))
    acct.check(max_duplicates=0)
    assert acct.interrupted == 1, acct.line()
    r.close()


def faultjobs_events(r: redis.Redis) -> list[dict[str, object]]:
    import orjson

    return [orjson.loads(raw) for raw in r.lrange(faultjobs.EVENTS, 0, -1)]

