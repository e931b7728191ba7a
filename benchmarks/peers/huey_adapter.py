#!/usr/bin/env python
"""Huey's adapter for ``benchmarks/bench.py`` (run by benchmarks/.venvs/huey/bin/python).

    benchmarks/.venvs/huey/bin/python benchmarks/peers/huey_adapter.py \\
        --redis-url redis://127.0.0.1:PORT/0 --workload onecall --jobs 2000 \\
        --concurrency 10 --processes 1 --timeout 300

Workers: P separate ``huey_consumer huey_jobs.huey -k thread -w C -q`` processes (RedisHuey,
blocking BRPOP dequeue, C worker threads each).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import huey
import redis
from peercommon import BIN, Peer, Runner, main

QUEUE_KEY = "huey.redis.bench"
RESULTS_KEY = "huey.results.bench"


class HueyPeer(Peer):
    system = "huey"
    version = huey.__version__
    no_async = "Huey has no async tasks (its workers are threads, processes or greenlets)"
    no_bulk = "Huey has no bulk enqueue: task.map() calls huey.enqueue once per task"
    no_lat3 = ("a Huey consumer serves one queue (one RedisHuey instance = one Redis list; "
               "priorities live inside that one queue): no 'last of 3 queues'")

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.conn = redis.Redis.from_url(self.url)
        import huey_jobs  # its RedisHuey reads BENCH_REDIS_URL, set by main()

        self.jobs = huey_jobs

    def push(self, job: str, arg: Any, queue: str = "default") -> None:
        getattr(self.jobs, job)(arg)

    def queued(self, queue: str = "default") -> int:
        return int(self.conn.llen(QUEUE_KEY))

    def worker_argvs(self, queues: Sequence[str], concurrency: int,
                     processes: int) -> list[list[str]]:
        if list(queues) != ["default"]:
            raise NotImplementedError(self.no_lat3)
        argv = [str(BIN / "huey_consumer"), "huey_jobs.huey", "-k", "thread", "-w",
                str(concurrency), "-q"]
        return [argv] * processes

    def noop_done(self, r: redis.Redis, n: int) -> bool:
        pipe = r.pipeline(transaction=False)
        pipe.llen(QUEUE_KEY)
        pipe.hlen(RESULTS_KEY)
        queued, finished = pipe.execute()
        return bool(queued == 0 and finished >= n)

    def describe(self) -> str:
        return ("P x `huey_consumer huey_jobs.huey -k thread -w C -q` (RedisHuey, blocking "
                "BRPOP dequeue, logging WARNING); push: calling the task; no-op done = queue "
                "empty and N results (noop returns True) in huey.results.bench")


class HueyRunner(Runner):
    def w_lat3(self) -> dict[str, Any]:
        return {"skipped": HueyPeer.no_lat3}


if __name__ == "__main__":
    sys.exit(main(HueyPeer, __doc__ or "", runner_class=HueyRunner))
