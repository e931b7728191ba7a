"""Fixtures of the system tests: process harnesses and the pushing client.

When a test fails, the tail of every roadie process's log is attached to its
report (section "roadie processes"), so a failure in CI says what the processes saw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import redis
from procs import Harness

import roadie
import roadie.current
from roadie.config import Config

HarnessFactory = Callable[..., Harness]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.failed:
        for harness in getattr(item, "_roadie_harnesses", []):
            report.sections.append(("roadie processes", harness.report()))
    return report


@pytest.fixture
def make_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HarnessFactory]:
    """``make_harness(url, env=None)``: a Harness whose processes die with the test."""
    made: list[Harness] = []
    request.node._roadie_harnesses = made

    def make(url: str, env: Mapping[str, str] | None = None) -> Harness:
        harness = Harness(url, tmp_path / f"procs{len(made) + 1}", env)
        made.append(harness)
        return harness

    try:
        yield make
    finally:
        for harness in made:
            harness.close()


@pytest.fixture
def procs(make_harness: HarnessFactory, redis_url: str, r: redis.Redis) -> Harness:
    """A harness on the session's (emptied) Redis."""
    return make_harness(redis_url)


@pytest.fixture
def use_client() -> Iterator[Callable[[str], roadie.Client]]:
    """``use_client(url)`` points ``perform_async`` & co. at ``url`` for this test."""
    made: list[roadie.Client] = []
    # Each use() stacks a default client; closing the stack puts back the one before.
    defaults = contextlib.ExitStack()

    def use(url: str) -> roadie.Client:
        client = roadie.Client(Config(redis_url=url, redis_url_configured=True))
        defaults.enter_context(roadie.current.using(client))
        made.append(client)
        return client

    try:
        yield use
    finally:
        defaults.close()
        for client in made:
            client.redis.close()


@pytest.fixture
def client(use_client: Callable[[str], roadie.Client], redis_url: str,
           r: redis.Redis) -> roadie.Client:
    """The default client, on the session's Redis."""
    return use_client(redis_url)
