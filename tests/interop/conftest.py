"""Fixtures of the interop tests: a fleet of real processes and a pushing client.

When a test fails, the tail of every Sidekiq and roadie log is attached to its
report (section "interop processes", tests/support/reports.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from interop_harness import Fleet
from support.reports import attach

import roadie


@pytest.fixture
def fleet(request: pytest.FixtureRequest, redis_url: str, r: redis.Redis,
          tmp_path: Path) -> Iterator[Fleet]:
    """Processes on the session's (emptied) Redis, all killed when the test ends."""
    made = Fleet(redis_url, tmp_path / "procs")
    attach(request, "interop processes", made.report)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def pyclient(use_client: Callable[[str], roadie.Client], redis_url: str,
             r: redis.Redis) -> roadie.Client:
    """roadie's default client (``roadie.push``, ``perform_async``) on the session's Redis."""
    return use_client(redis_url)
