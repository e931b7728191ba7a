"""Fixtures of the interop tests: a fleet of real processes and a pushing client.

When a test fails, the tail of every Sidekiq and roadie log is attached to its
report (section "interop processes").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from interop_harness import Fleet

import roadie
import roadie.current
from roadie.config import Config


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    fleet = getattr(item, "_interop_fleet", None)
    if report.failed and fleet is not None:
        report.sections.append(("interop processes", fleet.report()))
    return report


@pytest.fixture
def fleet(request: pytest.FixtureRequest, redis_url: str, r: redis.Redis,
          tmp_path: Path) -> Iterator[Fleet]:
    """Processes on the session's (emptied) Redis, all killed when the test ends."""
    made = Fleet(redis_url, tmp_path / "procs")
    request.node._interop_fleet = made
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def pyclient(redis_url: str, r: redis.Redis) -> Iterator[roadie.Client]:
    """roadie's default client (``roadie.push``, ``perform_async``) on the session's Redis."""
    client = roadie.Client(Config(redis_url=redis_url, redis_url_configured=True))
    try:
        with roadie.current.using(client):
            yield client
    finally:
        client.redis.close()
