"""Small tools shared by the tests: waiting on conditions, finding ports.

Tests synchronise by polling a condition with a deadline, never by sleeping a fixed
time: a fixed sleep is either too short on a loaded CI machine or wastes time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import redis

from roadie.embedded import free_port

__all__ = ["NOEVICTION", "free_port", "overfill", "wait_until"]

#: The setting roadie recommends, with which a full Redis refuses writes (``overfill``).
NOEVICTION = ("--maxmemory-policy", "noeviction")

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition not met",
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Raises ``AssertionError`` with ``message`` if ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (waited {timeout:g}s)")
        time.sleep(interval)


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
