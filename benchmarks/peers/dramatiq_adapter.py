#!/usr/bin/env python
"""Dramatiq's adapter for ``benchmarks/bench.py`` (run with benchmarks/.venvs/dramatiq/bin/python).

    benchmarks/.venvs/dramatiq/bin/python benchmarks/peers/dramatiq_adapter.py \\
        --redis-url redis://127.0.0.1:PORT/0 --workload onecall --jobs 20000 \\
        --concurrency 10 --processes 1 --timeout 600

Workers: one ``dramatiq dramatiq_jobs --processes P --threads C`` (Dramatiq's CLI
forks P worker processes of C worker threads each). Redis broker, default middleware
plus AsyncIO; actors with max_retries=0.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dramatiq
from peerkit import Peer, main


class DramatiqPeer(Peer):
    system = "dramatiq"
    version = dramatiq.__version__
    notes = ("one `dramatiq` CLI with --processes P --threads C; RedisBroker (redis-py with "
             "hiredis), default middleware + AsyncIO; io-async = async def actor on Dramatiq's "
             "event-loop thread, still one worker thread per job in flight; "
             "noop completion = the queue's message hash empty (Dramatiq deletes a message "
             "on ack)")
    bulk_skip = ("Dramatiq has no bulk enqueue API (group().run() and pipelines send "
                 "their messages one by one)")

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.pushed = 0
        import dramatiq_jobs  # after main() set BENCH_REDIS_URL: its broker is the same

        self.jobs = dramatiq_jobs

    def actor(self, kind: str, queue: str) -> Any:
        if kind == "lat":
            return self.jobs.LAT[queue]
        if kind == "probe":
            return self.jobs.PROBE[queue]
        if queue != "default":
            raise ValueError(f"{kind} jobs go to the default queue only")
        return getattr(self.jobs, kind)

    def push(self, kind: str, args: tuple[Any, ...], queue: str = "default") -> None:
        self.actor(kind, queue).send(*args)
        self.pushed += 1

    def worker_argvs(self, concurrency: int, processes: int,
                     queues: Sequence[str]) -> list[list[str]]:
        exe = str(Path(sys.executable).parent / "dramatiq")
        return [[exe, "dramatiq_jobs", "--processes", str(processes), "--threads",
                 str(concurrency), "--queues", *queues]]

    def done(self) -> int:
        return self.pushed - int(self.r.hlen("dramatiq:default.msgs"))


if __name__ == "__main__":
    sys.exit(main(DramatiqPeer))
