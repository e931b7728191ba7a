"""arq's job coroutines and WorkerSettings (the worker: ``arq.run_worker(WorkerSettings)``).

Settings come from the environment set by the adapter: BENCH_REDIS_URL, BENCH_ARQ_MAX_JOBS
(C: concurrent jobs per worker process) and BENCH_ARQ_POLL_DELAY. A job's Redis call
goes through ``ctx["redis"]``, the worker's own async client (arq's usual style). io-sync
runs its blocking sleep in a thread pool of C threads made at worker start-up, the way
arq's docs say to run blocking code; io-async awaits asyncio.sleep. Both record their
start and end through ``spanlog.SpanLog`` (no Redis call per job), like every system.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import spanlog
from arq.connections import RedisSettings

MAX_JOBS = int(os.environ.get("BENCH_ARQ_MAX_JOBS", "10"))
#: io/aio: "start end" per job, written by a thread with one RPUSH every 20 ms.
SPANS = spanlog.SpanLog()


async def noop(ctx: dict[str, Any]) -> None:
    pass


async def onecall(ctx: dict[str, Any], i: int) -> None:
    await ctx["redis"].hincrby("bench:runs", str(i), 1)


def _blocking_sleep() -> float:
    start = time.time()
    time.sleep(0.010)
    return start


async def io(ctx: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    start = await loop.run_in_executor(ctx["threads"], _blocking_sleep)
    SPANS.add(start, time.time())


async def aio(ctx: dict[str, Any]) -> None:
    start = time.time()
    await asyncio.sleep(0.010)
    SPANS.add(start, time.time())


async def lat(ctx: dict[str, Any], pushed_at: float) -> None:
    await ctx["redis"].rpush("bench:lat", time.time() - pushed_at)


async def probe(ctx: dict[str, Any]) -> None:
    await ctx["redis"].rpush("bench:probe", 1)


async def startup(ctx: dict[str, Any]) -> None:
    ctx["threads"] = ThreadPoolExecutor(max_workers=MAX_JOBS)


async def shutdown(ctx: dict[str, Any]) -> None:
    ctx["threads"].shutdown(wait=False)


class WorkerSettings:
    functions = [noop, onecall, io, aio, lat, probe]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(os.environ["BENCH_REDIS_URL"])
    max_jobs = MAX_JOBS
    poll_delay = float(os.environ.get("BENCH_ARQ_POLL_DELAY", "0.5"))
    keep_result = 0
    max_tries = 1
    handle_signals = True
