#!/usr/bin/env python
"""arq's adapter for ``benchmarks/bench.py`` (run with benchmarks/.venvs/arq/bin/python).

    benchmarks/.venvs/arq/bin/python benchmarks/peers/arq_adapter.py \\
        --redis-url redis://127.0.0.1:PORT/0 --workload onecall --jobs 20000 \\
        --concurrency 10 --processes 1 --timeout 600

Workers: P processes each running ``arq.run_worker(arq_jobs.WorkerSettings)`` (arq's
documented API; its CLI would log every job at INFO) with max_jobs = C concurrent jobs
(asyncio tasks). Pushes: ``ArqRedis.enqueue_job`` on one event loop of this process.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import arq
from arq.connections import RedisSettings, create_pool
from peerkit import Peer, main

#: arq polls its queue (a sorted set) every poll_delay seconds, 0.5 by default; between
#: polls a worker starts nothing new, so the default caps it near (read limit / 0.5 s).
POLL_DELAY = "0.01"
WORKER = ("import arq, arq_jobs; arq.run_worker(arq_jobs.WorkerSettings)")


class ArqPeer(Peer):
    system = "arq"
    version = arq.VERSION
    notes = ("P processes of arq.run_worker(WorkerSettings), max_jobs=C asyncio tasks each, "
             f"poll_delay={POLL_DELAY} s (default 0.5 s), keep_result=0, max_tries=1; jobs "
             "call Redis through ctx['redis'] (redis-py 5 asyncio + hiredis; arq needs "
             "redis<6); io-sync: time.sleep in a C-thread executor (arq's way for blocking "
             "code); noop completion = arq's queue sorted set empty (arq removes a job id "
             "only when the job has finished)")
    bulk_skip = "arq has no bulk enqueue API (enqueue_job is one job per call)"
    skips = {"lat3": "an arq worker serves one queue (WorkerSettings.queue_name)"}

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.loop = asyncio.new_event_loop()
        self.pool = self.loop.run_until_complete(create_pool(RedisSettings.from_dsn(url)))

    def push(self, kind: str, args: tuple[Any, ...], queue: str = "default") -> None:
        self.loop.run_until_complete(self.pool.enqueue_job(kind, *args))

    def push_many(self, kind: str, argss: Sequence[tuple[Any, ...]],
                  queue: str = "default") -> None:
        """Untimed pre-pushes: enqueue_job calls, 200 at a time in flight."""
        async def go() -> None:
            for i in range(0, len(argss), 200):
                await asyncio.gather(*(self.pool.enqueue_job(kind, *a) for a in argss[i:i + 200]))
        self.loop.run_until_complete(go())

    def worker_argvs(self, concurrency: int, processes: int,
                     queues: Sequence[str]) -> list[list[str]]:
        os.environ["BENCH_ARQ_MAX_JOBS"] = str(concurrency)  # inherited by the workers
        os.environ["BENCH_ARQ_POLL_DELAY"] = POLL_DELAY
        return [[sys.executable, "-c", WORKER] for _ in range(processes)]

    def finished(self, n: int) -> bool:
        return int(self.r.zcard("arq:queue")) == 0


if __name__ == "__main__":
    sys.exit(main(ArqPeer))
