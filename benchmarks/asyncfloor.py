"""Floors for the I/O workload: its job bodies without any queue, framework or Redis.

``bench.py``'s I/O workload runs 2,000 jobs that sleep 10 ms (and note their start
and end in a list) at 10 and 100 executors; the ideal is 2,000 x 10 ms / executors.
This runs the same bodies, one after another in each of C lanes, three ways:

- ``threads``: C threads calling ``time.sleep(0.01)`` (the sync jobs' floor);
- ``tasks``: C asyncio tasks awaiting ``asyncio.sleep(0.01)`` on one loop (the floor
  of any framework that runs async jobs as tasks on the loop);
- ``hand-off``: C threads each handing its coroutine to one event loop thread and
  waiting for it (roadie's ``LoopThread``): the floor of roadie's way of running
  ``async def`` jobs today.

Each at 1 process x C and at 2 processes x C/2 (started together; timed from the
first start to the last end of all of them, as bench.py times it), on uvloop's loop
(roadie's default when installed).

    .venv/bin/python benchmarks/asyncfloor.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from roadie.server.asyncloop import LoopThread, new_event_loop

JOBS = 2000
WAYS = ("threads", "tasks", "hand-off")


def lanes(concurrency: int, per_lane: int, lane: Callable[[int], None]) -> None:
    """``lane(per_lane)`` in ``concurrency`` threads, started together."""
    go = threading.Event()

    def run() -> None:
        go.wait()
        lane(per_lane)

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join()


def child(way: str, concurrency: int, jobs: int) -> tuple[float, float]:
    """Run ``jobs`` bodies in ``concurrency`` lanes; (first start, last end)."""
    spans: list[tuple[float, float]] = []
    if way == "threads":
        def lane(n: int) -> None:
            for _ in range(n):
                started = time.time()
                time.sleep(0.01)
                spans.append((started, time.time()))

        lanes(concurrency, jobs // concurrency, lane)
    elif way == "tasks":
        async def main() -> None:
            async def lane(n: int) -> None:
                for _ in range(n):
                    started = time.time()
                    await asyncio.sleep(0.01)
                    spans.append((started, time.time()))

            await asyncio.gather(*(lane(jobs // concurrency) for _ in range(concurrency)))

        loop = new_event_loop("auto")
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
    else:
        runner = LoopThread("auto")

        async def body() -> None:
            started = time.time()
            await asyncio.sleep(0.01)
            spans.append((started, time.time()))

        def hand_off(n: int) -> None:
            for _ in range(n):
                runner.run(body())

        lanes(concurrency, jobs // concurrency, hand_off)
        runner.stop()
    return min(s for s, _ in spans), max(e for _, e in spans)


def measure(way: str, concurrency: int, processes: int) -> float:
    per = concurrency // processes
    argv = [sys.executable, __file__, "--child", way, str(per), str(JOBS // processes)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE) for _ in range(processes)]
    spans = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        if p.returncode != 0:
            raise SystemExit(f"child {argv} failed ({p.returncode})")
        first, last = map(float, out.split())
        spans.append((first, last))
    return max(e for _, e in spans) - min(s for s, _ in spans)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        first, last = child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        print(first, last)
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    print("| body | executors | processes | median s | ideal s | x ideal | runs |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for way in WAYS:
        for concurrency, processes in ((10, 1), (100, 1), (100, 2)):
            secs = [measure(way, concurrency, processes) for _ in range(args.runs)]
            ideal = JOBS * 0.01 / concurrency
            med = statistics.median(secs)
            print(f"| {way} | {concurrency} | {processes} | {med:.3f} | {ideal:.2f} | "
                  f"{med / ideal:.2f} | " + ", ".join(f"{s:.3f}" for s in secs) + " |")


if __name__ == "__main__":
    main()
