"""Scenario 2: TERM during long jobs, with the shutdown timeout (-t) running out.

Each stopped process must push its running jobs back to their queues and exit 0;
the jobs run again elsewhere, and none is lost or finished twice.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable

import faultjobs
import pytest
import redis
from fault_support import FAULT_ENV, account, scale, soak, wait_drained
from support.procs import Harness, Proc
from support.redis import inflight_total
from support.wait import wait_until

from roadie.embedded import RedisServer

pytestmark = pytest.mark.system

PUSHED_BACK = re.compile(r"(\d+) job\(s\) still running after")


def test_term_with_timeout_pushes_long_jobs_back(
    redis_server: RedisServer, make_harness: Callable[..., Harness],
    use_client: Callable[[str], object],
) -> None:
    url = redis_server.url
    use_client(url)
    r = redis.Redis.from_url(url)
    t0 = time.monotonic()
    rounds = int(soak(2, 10))
    jids = faultjobs.Long.perform_bulk([[soak(2.0, 3.0)] for _ in range(scale(6))])
    jids += faultjobs.Count.perform_bulk([[20] for _ in range(scale(100))])
    procs = make_harness(url, FAULT_ENV)
    for _ in range(2):
        procs.spawn("-c", "3", "-t", "0.5", r=r)

    def running_long() -> Proc | None:
        """A process with a Long job in its in-flight list (batches may hold more)."""
        for p in procs.alive():
            ident = p.find_identity(r)
            if ident and any(b'"faults.Long"' in raw
                             for raw in r.lrange(f"roadie:inflight:{ident}", 0, -1)):
                return p
        return None

    stopped = []
    pushed_back = 0
    for _ in range(rounds):
        current = wait_until(running_long, 30, 0.02, "no process is running a long job")
        began = time.monotonic()
        current.send(signal.SIGTERM)
        assert current.wait_exit(15) == 0
        stopped.append(time.monotonic() - began)
        found = PUSHED_BACK.search(current.output())
        pushed_back += int(found.group(1)) if found else 0
        procs.spawn("-c", "3", "-t", "0.5", r=r)
    wait_drained(r, jids, soak(60, 180))
    assert inflight_total(r) == 0

    acct = account(r, "TERM, -t 0.5 runs out", jids, t0, stops=rounds,
                   pushed_back=pushed_back, max_stop_s=round(max(stopped), 2))
    acct.check(max_duplicates=0)
    assert pushed_back >= 1, "no stop cut a job off; the test proves nothing"
    # Every run a stop cut off was pushed back and ran again in full.
    assert acct.interrupted == pushed_back, acct.line()
    assert max(stopped) < 5, stopped
    r.close()
