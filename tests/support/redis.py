"""A real Redis as the tests drive and read it: putting it over ``maxmemory``, and
counting what roadie left where (queues, in-flight lists, schedule, retry, dead).

``import redis`` here is redis-py (absolute imports): this module is ``support.redis``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis

from roadie.config import Config
from roadie.redis.connection import connect_async
from roadie.redis.loop import LoopRedis

__all__ = ["NOEVICTION", "inflight_keys", "inflight_total", "left_anywhere", "overfill",
           "queue_total"]

#: The setting roadie recommends, with which a full Redis refuses writes (``overfill``).
NOEVICTION = ("--maxmemory-policy", "noeviction")


def overfill(r: redis.Redis, megabytes: int = 4, over_bytes: int = 1_000_000) -> int:
    """Put a Redis with ``noeviction`` over its ``maxmemory``: write ``megabytes`` of
    filler, then set ``maxmemory`` ``over_bytes`` below what it uses (a limit below the
    use, not a fill up to it: Redis can dip back under a limit it just reached).
    Returns the new ``maxmemory``. Redis then refuses every write that may use memory."""
    chunk = b"x" * 100_000
    r.mset({f"filler:{i}": chunk for i in range(megabytes * 10)})
    limit = int(r.info("memory")["used_memory"]) - over_bytes
    r.config_set("maxmemory", str(limit))
    try:
        r.set("one-more", b"x")
    except redis.exceptions.OutOfMemoryError:
        return limit
    raise AssertionError("Redis took a write over its maxmemory: is its policy noeviction?")


def inflight_keys(r: redis.Redis) -> list[bytes]:
    return sorted(r.scan_iter(match="roadie:inflight:*", count=1000))


def inflight_total(r: redis.Redis) -> int:
    return sum(int(r.llen(k)) for k in inflight_keys(r))


def queue_total(r: redis.Redis) -> int:
    return sum(int(r.llen(k)) for k in r.scan_iter(match="queue:*", count=1000))


def left_anywhere(r: redis.Redis) -> dict[str, int]:
    """Jobs still somewhere roadie keeps them (all zero when a run is fully done)."""
    return {
        "queues": queue_total(r),
        "inflight": inflight_total(r),
        "schedule": int(r.zcard("schedule")),
        "retry": int(r.zcard("retry")),
        "dead": int(r.zcard("dead")),
    }


def with_loop_redis(config: Config, body: Callable[[LoopRedis], Awaitable[Any]],
                    timeout_s: float = 5.0) -> Any:
    """Run ``body`` with a ``LoopRedis`` on a fresh event loop; close everything after."""

    async def main() -> Any:
        client = await connect_async(config)
        link = LoopRedis(client, timeout_s)
        try:
            return await body(link)
        finally:
            await link.close()
            await client.aclose()

    return asyncio.run(main())
