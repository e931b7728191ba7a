"""How fast the dashboard answers with large data: 1,000,000 jobs in one queue and
100,000 entries in the retry set (issue 4). A benchmark, not a timed test.

    python benchmarks/dashboard.py                    # starts its own redis-server
    python benchmarks/dashboard.py --redis-url redis://127.0.0.1:6379/15   # FLUSHES it

Prints, for each page and API call, the median and worst of a few requests.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import orjson
import redis
from starlette.testclient import TestClient

from roadie.config import Config
from roadie.embedded import RedisServer
from roadie.keys import Keys
from roadie.web import create_app

KEYS = Keys()


def fill(r: redis.Redis, queued: int, retries: int) -> None:
    now = time.time()
    step = 10_000
    for start in range(0, queued, step):
        batch = [orjson.dumps({"class": "BigJob", "args": [i, "x" * 40], "queue": "default",
                               "jid": f"{i:024x}", "created_at": now, "enqueued_at": now})
                 for i in range(start, min(queued, start + step))]
        r.lpush(KEYS.queue("default"), *batch)
    r.sadd(KEYS.queues, "default")
    for start in range(0, retries, step):
        entries = {orjson.dumps({"class": "FailJob", "args": [i], "queue": "default",
                                 "jid": f"r{i:023x}", "retry_count": 3,
                                 "error_class": "ValueError",
                                 "error_message": f"boom {i}"}): now + i
                   for i in range(start, min(retries, start + step))}
        r.zadd(KEYS.retry, entries)


def measure(web: TestClient, path: str, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        reply = web.get(path)
        times.append(time.perf_counter() - t0)
        assert reply.status_code == 200, (path, reply.status_code)
    return statistics.median(times), max(times)


def run(url: str, queued: int, retries: int, runs: int) -> None:
    r = redis.Redis.from_url(url)
    r.flushdb()
    t0 = time.perf_counter()
    fill(r, queued, retries)
    print(f"filled {queued:,} queued + {retries:,} retries in {time.perf_counter() - t0:.1f}s")
    web = TestClient(create_app(Config(redis_url=url, redis_url_configured=True)))
    last_page = queued // 25
    paths = ["/", "/queues", "/queues/default", f"/queues/default?page={last_page}",
             "/retries", f"/retries?page={retries // 25}", "/retries?order=desc",
             "/retries?q=boom%2099999", "/api/stats", "/api/queues",
             "/api/sets/retries?page=2000"]
    print(f"{'request':45} {'median ms':>10} {'worst ms':>10}")
    for path in paths:
        med, worst = measure(web, path, runs)
        print(f"{path:45} {med * 1000:10.1f} {worst * 1000:10.1f}")
    r.flushdb()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--redis-url", help="a Redis to FLUSH and fill (default: start one)")
    p.add_argument("--queued", type=int, default=1_000_000)
    p.add_argument("--retries", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    if args.redis_url:
        run(args.redis_url, args.queued, args.retries, args.runs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(directory=Path(tmp))
        server.start()
        try:
            run(server.url, args.queued, args.retries, args.runs)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
