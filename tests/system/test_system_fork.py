"""A job that forks: its child never runs roadie's processor loop (issue 17, item 9)."""

from __future__ import annotations

import signal
from pathlib import Path

import forkjobs
import pytest
import redis
from support.procs import Harness
from support.redis import left_anywhere
from support.wait import wait_until

import roadie

pytestmark = pytest.mark.system

JOBS = 60


def test_a_forked_child_that_returns_from_perform_exits_and_runs_nothing_else(
    redis_url: str, r: redis.Redis, tmp_path: Path, client: roadie.Client
) -> None:
    with Harness(redis_url, tmp_path / "procs", jobs=Path(forkjobs.__file__)) as procs:
        jids = [forkjobs.ForkAndReturn.perform_async(n) for n in range(JOBS // 2)]
        jids += [forkjobs.ForkAndRaise.perform_async(n) for n in range(JOBS // 2)]
        proc = procs.spawn("-c", "2", r=r)

        def runs() -> dict[bytes, bytes]:
            return r.hgetall(forkjobs.RUNS)

        wait_until(lambda: len(runs()) == JOBS and left_anywhere(r)["queues"] == 0
                   and left_anywhere(r)["inflight"] == 0, timeout=60,
                   message="the forking jobs did not all run")
        # Each job ran once: no child went on to fetch and run jobs of its own.
        assert sorted(runs().values()) == [b"1"] * JOBS
        assert set(runs()) == {j.encode() for j in jids}
        # The children's failures and returns wrote no outcome: nothing was retried
        # or buried, and the parent's connection still works (its runs got through).
        assert left_anywhere(r) == {"queues": 0, "inflight": 0, "schedule": 0,
                                    "retry": 0, "dead": 0}
        # Each child of ForkAndReturn made its call on a connection of its own.
        assert r.get("sys:child-calls") == str(JOBS // 2).encode()
        proc.send(signal.SIGTERM)
        assert proc.wait_exit(20) == 0
        assert "Traceback" not in proc.output()
