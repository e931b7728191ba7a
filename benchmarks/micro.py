"""Where a job's time goes: the per-job building blocks of roadie's hot path, timed alone.

    .venv/bin/python benchmarks/micro.py            # ~30 s; prints a Markdown table
    .venv/bin/python benchmarks/micro.py --write    # and puts it in docs/performance.md

Each row is the median of 5 timings of a loop, in µs per operation (wall) and, for
the threaded rows, CPU µs per operation of this process (all threads). Redis rows use
a private redis-server on 127.0.0.1 (started and stopped here, as core.py does). JSON
rows compare the standard library, orjson (what roadie uses) and msgspec (measured when
installed: ``pip install msgspec``).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from queue import SimpleQueue
from typing import Any

import orjson
import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from core import load1, redis_for  # noqa: E402

from roadie import payload as pl  # noqa: E402

START_MARK = "<!-- benchmarks/micro.py:start (generated; edit the script, not this) -->"
END_MARK = "<!-- benchmarks/micro.py:end -->"

#: A typical payload as roadie's client writes it (about 230 bytes).
RAW = orjson.dumps({
    "class": "signup.jobs.WelcomeEmail", "args": [12345, "ada@example.com"],
    "retry": True, "queue": "mail", "jid": "2f4d6c8a0b1e3f5a7c9d1e3f",
    "created_at": 1795867200.123, "enqueued_at": 1795867200.125,
})

Row = tuple[str, float, float | None]


def per_op(fn: Callable[[], object], n: int, repeats: int = 5) -> float:
    """Median wall µs per call of ``fn`` over ``repeats`` loops of ``n`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(times)


def threaded(make: Callable[[], Callable[[], object]], threads: int, total: int) -> Row:
    """``threads`` threads each calling their own ``make()`` op: wall and CPU µs per op."""
    per = total // threads
    ops = [make() for _ in range(threads)]

    def work(op: Callable[[], object]) -> None:
        for _ in range(per):
            op()

    workers = [threading.Thread(target=work, args=(op,)) for op in ops]
    t0, c0 = time.perf_counter(), time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    n = per * threads
    return ("", (time.perf_counter() - t0) / n * 1e6, (time.process_time() - c0) / n * 1e6)


def json_rows(n: int) -> list[Row]:
    payload = orjson.loads(RAW)
    rows: list[Row] = [
        ("decode: json.loads (standard library)", per_op(lambda: json.loads(RAW), n), None),
        ("decode: orjson.loads", per_op(lambda: orjson.loads(RAW), n), None),
        ("decode: roadie.payload.decode (orjson + checks)", per_op(lambda: pl.decode(RAW), n),
         None),
        ("encode: json.dumps (compact)",
         per_op(lambda: json.dumps(payload, separators=(",", ":")).encode(), n), None),
        ("encode: orjson.dumps", per_op(lambda: orjson.dumps(payload), n), None),
    ]
    try:
        import msgspec
    except ImportError:
        rows.append(("msgspec: not installed (`pip install msgspec` to compare)", 0.0, None))
    else:
        decoder, encoder = msgspec.json.Decoder(), msgspec.json.Encoder()
        rows.insert(2, ("decode: msgspec.json.Decoder().decode",
                        per_op(lambda: decoder.decode(RAW), n), None))
        rows.append(("encode: msgspec.json.Encoder().encode",
                     per_op(lambda: encoder.encode(payload), n), None))
    return rows


def logging_rows(n: int) -> list[Row]:
    from roadie import log as roadie_log

    logger = logging.getLogger("roadie")
    extra = {"roadie": {"class": "WelcomeEmail", "jid": "2f4d6c8a0b1e3f5a7c9d1e3f"}}
    rows: list[Row] = []
    for level, fmt in (("WARNING", "plain"), ("INFO", "plain"), ("INFO", "json")):
        roadie_log.setup(level, fmt, stream=io.StringIO())

        def two_lines() -> None:
            # What a job costs in logs: "start" and "done" at INFO.
            if logger.isEnabledFor(logging.INFO):
                logger.info("start", extra=extra)
                logger.info("done", extra=extra)

        label = ("logging per job: level WARNING (start/done skipped)" if level == "WARNING"
                 else f"logging per job: start + done lines, {fmt} format")
        rows.append((label, per_op(two_lines, n), None))
    roadie_log.setup("WARNING", "plain", stream=io.StringIO())
    return rows


def contended_logging_rows(n: int, threads: int = 100) -> list[Row]:
    """start + done from 100 threads at once, written to a real file (``/dev/null``):
    a write lets go of the GIL, so the handler's locking shows, unlike with a
    StringIO. The standard library's StreamHandler is the baseline."""
    from roadie import log as roadie_log

    logger = logging.getLogger("roadie")
    extra = {"roadie": {"class": "WelcomeEmail", "jid": "2f4d6c8a0b1e3f5a7c9d1e3f"}}
    rows: list[Row] = []

    def make() -> Callable[[], object]:
        def two_lines() -> None:
            logger.info("start", extra=extra)
            logger.info("done", extra=extra)
        return two_lines

    with open(os.devnull, "w") as sink:
        for label, handler in (
            ("logging.StreamHandler (standard library)", logging.StreamHandler(sink)),
            ("roadie's LineWriter", roadie_log.LineWriter(sink)),
        ):
            handler.setFormatter(roadie_log.PlainFormatter())
            logger.handlers[:] = [handler]
            logger.setLevel(logging.INFO)
            _, wall, cpu = threaded(make, threads, n)
            rows.append((f"logging per job from {threads} threads at once, to a file: {label}",
                         wall, cpu))
    roadie_log.setup("WARNING", "plain", stream=io.StringIO())
    return rows


def redis_rows(url: str, n: int) -> list[Row]:
    from redis._parsers import _HiredisParser, _RESP2Parser

    rows: list[Row] = []
    for name, parser in (("hiredis", _HiredisParser), ("pure-Python", _RESP2Parser)):
        client = redis.Redis.from_url(url, single_connection_client=True, parser_class=parser)
        rows.append((f"PING, one connection, {name} parser", per_op(client.ping, n), None))
        client.hset("micro:h", mapping={str(i): i for i in range(100)})
        rows.append((f"HGETALL of 100 fields, {name} parser",
                     per_op(lambda c=client: c.hgetall("micro:h"), n // 2), None))
        client.close()
    pooled = redis.Redis.from_url(url)
    rows.append(("PING through a pooled client (connection pool lock)",
                 per_op(pooled.ping, n), None))
    for threads in (1, 2, 4, 10):
        for kind in ("own connection", "one shared pooled client"):
            if kind == "own connection":
                def make() -> Callable[[], object]:
                    return redis.Redis.from_url(url, single_connection_client=True).ping
            else:
                def make() -> Callable[[], object]:
                    return pooled.ping
            _, wall, cpu = threaded(make, threads, n * 2)
            rows.append((f"PING from {threads} thread(s), {kind} each" if kind == "own connection"
                         else f"PING from {threads} thread(s), {kind}", wall, cpu))
    return rows


def loop_fetch_rows(url: str, n: int) -> list[Row]:
    """A fetch of 10 jobs (fetch.lua) made on the event loop, as processors' next
    batches are: through redis.asyncio's client, and through roadie's LoopRedis."""

    from roadie.config import Config
    from roadie.keys import Keys
    from roadie.redis.connection import connect_async
    from roadie.redis.loop import LoopRedis
    from roadie.server.asyncloop import new_event_loop
    from roadie.server.fetch import Fetcher

    config = Config(redis_url=url, redis_url_configured=True)
    sync = redis.Redis.from_url(url)
    fetcher = Fetcher(sync, config, Keys(config.namespace), "micro")
    queue = fetcher.queue_keys[0]

    async def timed(execute: Callable[..., Any]) -> tuple[float, float]:
        sync.delete(queue, fetcher.inflight)
        left = 10 * (n + 1)  # and the first fetch's
        while left > 0:
            sync.rpush(queue, *[RAW] * min(1000, left))
            left -= 1000
        await fetcher.fetch_async(execute, 10)  # connect (and load the script) first
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            if len(await fetcher.fetch_async(execute, 10)) != 10:
                raise RuntimeError("the queue ran dry")
        return ((time.perf_counter() - wall0) / n * 1e6, (time.process_time() - cpu0) / n * 1e6)

    async def measure() -> list[Row]:
        client = await connect_async(config)
        lean = LoopRedis(client, config.socket_timeout_s)
        rows: list[Row] = []
        for label, execute in (("redis.asyncio client", client.execute_command),
                               ("roadie LoopRedis", lean.execute)):
            walls, cpus = zip(*[await timed(execute) for _ in range(3)], strict=True)
            rows.append((f"fetch of 10 jobs on the event loop (uvloop), {label}",
                         statistics.median(walls), statistics.median(cpus)))
        await lean.close()
        await client.aclose()
        return rows

    loop = new_event_loop()
    try:
        return loop.run_until_complete(measure())
    finally:
        loop.close()
        sync.delete(queue, fetcher.inflight)
        sync.close()


def handoff_rows(n: int) -> list[Row]:
    """A job handed to another thread and its result handed back."""
    to_worker: SimpleQueue[Any] = SimpleQueue()
    back: SimpleQueue[Any] = SimpleQueue()

    def worker() -> None:
        while (item := to_worker.get()) is not None:
            back.put(item)

    t = threading.Thread(target=worker, daemon=True)
    t.start()

    def round_trip() -> None:
        to_worker.put(1)
        back.get()

    wall = per_op(round_trip, n // 2)
    to_worker.put(None)
    t.join(5)
    return [("thread hand-off: SimpleQueue to a worker thread and back", wall, None)]


def render(rows: list[Row], load_before: float, load_after: float) -> str:
    lines = [
        f"1-min load average {load_before:.2f} at start, {load_after:.2f} at end. "
        "Median of 5 loops; µs per operation.",
        "",
        "| operation | wall µs/op | CPU µs/op (all threads) |",
        "|---|---:|---:|",
    ]
    for label, wall, cpu in rows:
        if wall == 0.0:
            lines.append(f"| {label} | — | — |")
            continue
        lines.append(f"| {label} | {wall:,.2f} | {'' if cpu is None else f'{cpu:,.1f}'} |")
    lines += ["", "Command: `.venv/bin/python benchmarks/micro.py --write`"]
    return "\n".join(lines) + "\n"


def write_doc(path: Path, block: str) -> None:
    section = f"{START_MARK}\n{block}{END_MARK}\n"
    text = path.read_text()
    start, end = text.find(START_MARK), text.find(END_MARK)
    if start != -1 and end > start:
        text = text[:start] + section + text[end + len(END_MARK):].removeprefix("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--redis-url", help="a local, empty Redis (default: a private server)")
    p.add_argument("--flush", action="store_true", help="allow flushing a non-empty --redis-url")
    p.add_argument("-n", type=int, default=20_000, help="operations per loop (default 20,000)")
    p.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = p.parse_args(argv)
    before = load1()
    rows = (json_rows(args.n * 5) + logging_rows(args.n) + contended_logging_rows(args.n)
            + handoff_rows(args.n))
    with redis_for(args) as (url, _binary):
        rows += redis_rows(url, args.n) + loop_fetch_rows(url, args.n // 4)
        redis.Redis.from_url(url).delete("micro:h")
    block = render(rows, before, load1())
    print(block)
    if args.write:
        write_doc(HERE.parent / "docs" / "performance.md", block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
