"""The floor for ``async def`` I/O jobs: the I/O workload's job body without any queue.

``bench.py``'s async I/O workload runs 2,000 ``AsyncSleep`` jobs (``await
asyncio.sleep(0.01)``, then one RPUSH through a ``redis.asyncio`` client) at 10 and 100
executors; the ideal is 2,000 x 10 ms / executors. This runs the same body as C
asyncio tasks in one process, each doing its share one after another, with no queue,
no fetch and no threads: what the event loop and redis.asyncio alone cost on this
machine, on asyncio's loop and on uvloop's (roadie's default when installed). Timed as
bench.py times it: first start to last end.

    .venv/bin/python benchmarks/asyncfloor.py [--redis-url URL] [--runs 5]

Needs a Redis (default redis://127.0.0.1:6379/15); it writes one list and deletes it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from functools import partial

import redis.asyncio

from roadie.server.asyncloop import new_event_loop

JOBS = 2000
KEY = "bench:asyncfloor"


async def floor(url: str, concurrency: int) -> float:
    client = redis.asyncio.Redis.from_url(url)
    spans: list[tuple[float, float]] = []

    async def body() -> None:
        started = time.time()
        await asyncio.sleep(0.01)
        await client.rpush(KEY, f"{started} {time.time()}")
        spans.append((started, time.time()))

    async def lane() -> None:
        for _ in range(JOBS // concurrency):
            await body()

    await client.ping()  # connect outside the timed part
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    await client.delete(KEY)
    await client.aclose()
    return max(e for _, e in spans) - min(s for s, _ in spans)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    for kind in ("asyncio", "uvloop"):
        for concurrency in (10, 100):
            secs = []
            for _ in range(args.runs):
                with asyncio.Runner(loop_factory=partial(new_event_loop, kind)) as runner:
                    secs.append(runner.run(floor(args.redis_url, concurrency)))
            ideal = JOBS * 0.01 / concurrency
            med = statistics.median(secs)
            print(f"{kind} loop, {concurrency} tasks: median {med:.3f} s of {args.runs} runs, "
                  f"ideal {ideal:.2f} s (x{med / ideal:.2f}); runs: "
                  + ", ".join(f"{s:.3f}" for s in secs))


if __name__ == "__main__":
    main()
