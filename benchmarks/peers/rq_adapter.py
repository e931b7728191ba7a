#!/usr/bin/env python
"""RQ's adapter for ``benchmarks/bench.py`` (run with benchmarks/.venvs/rq/bin/python).

    benchmarks/.venvs/rq/bin/python benchmarks/peers/rq_adapter.py \\
        --redis-url redis://127.0.0.1:PORT/0 --workload onecall --jobs 20000 \\
        --concurrency 1 --processes 10 --timeout 600

Workers: P ``rq worker -w rq.SimpleWorker`` processes (an RQ worker runs one job at a
time, so C must be 1; 10 executors = ``--processes 10 --concurrency 1``). SimpleWorker
runs jobs in the worker process instead of forking a work horse per job (RQ's
default), which is RQ's fast mode. Jobs are enqueued with ``result_ttl=0``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rq
from peerkit import BenchError, Peer, main
from rq import Queue

KINDS = ("noop", "onecall", "io", "lat", "probe")


class RQPeer(Peer):
    system = "rq"
    version = rq.__version__
    notes = ("P rq worker processes, worker class rq.SimpleWorker (no fork per job), "
             "C is always 1; logging level WARNING; jobs enqueued with result_ttl=0; "
             "redis-py with hiredis; noop completion = sum of the workers' "
             "successful_job_count")
    skips = {"io-async": "RQ has no async jobs"}

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.queues: dict[str, Queue] = {}
        import rq_jobs  # after main() set BENCH_REDIS_URL

        self.funcs = {kind: getattr(rq_jobs, kind) for kind in KINDS}

    def queue(self, name: str) -> Queue:
        if name not in self.queues:
            self.queues[name] = Queue(name, connection=self.r)
        return self.queues[name]

    def check(self, concurrency: int, processes: int) -> None:
        if concurrency != 1:
            raise BenchError(f"an RQ worker runs one job at a time: use --concurrency 1 and "
                             f"--processes {concurrency * processes} for "
                             f"{concurrency * processes} executors")

    def push(self, kind: str, args: tuple[Any, ...], queue: str = "default") -> None:
        self.queue(queue).enqueue(self.funcs[kind], *args, result_ttl=0)

    def push_many(self, kind: str, argss: Sequence[tuple[Any, ...]],
                  queue: str = "default") -> None:
        func = self.funcs[kind]
        self.queue(queue).enqueue_many(  # one MULTI/EXEC pipeline for the chunk
            [Queue.prepare_data(func, args, result_ttl=0) for args in argss])

    def worker_argvs(self, concurrency: int, processes: int,
                     queues: Sequence[str]) -> list[list[str]]:
        rq_bin = str(Path(sys.executable).parent / "rq")
        return [[rq_bin, "worker", "--url", self.url, "--worker-class", "rq.SimpleWorker",
                 "--logging_level", "WARNING", "--name", f"bench-{i}", *queues]
                for i in range(processes)]

    def _workers(self) -> list[bytes]:
        return list(self.r.smembers("rq:workers"))

    def done(self) -> int:
        keys = self._workers()
        if not keys:
            return 0
        with self.r.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key, "successful_job_count")
            return sum(int(v or 0) for v in pipe.execute())

    def ready(self, processes: int) -> bool:
        return len(self._workers()) >= processes


if __name__ == "__main__":
    sys.exit(main(RQPeer))
