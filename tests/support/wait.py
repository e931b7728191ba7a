"""Waiting on a condition with a deadline: ``wait_until`` and ``poll``.

Tests synchronise by polling a condition with a deadline, never by sleeping a fixed
time: a fixed sleep is either too short on a loaded CI machine or wastes time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["poll", "wait_until"]

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


def poll(predicate: Callable[[], Any], timeout: float, message: str) -> Any:
    """``wait_until`` with a gentler interval, for heavier checks (scans of Redis,
    Sidekiq's API) and checks on other processes."""
    return wait_until(predicate, timeout, 0.1, message)
