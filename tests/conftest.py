"""Fixtures every test can use to reach a real Redis.

``REDIS_URL`` set: the suite uses that server as given (CI points it at the machine's
Redis, e.g. redis://127.0.0.1:6379/14). Not set: the suite starts one private
redis-server for the whole session, so a fresh checkout needs no Redis install.
Either way each test starts from an empty database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from roadie.config import Config
from roadie.embedded import RedisServer
from roadie.speedups import parse_off as parse_speedups_off

#: The shared fixtures (make_harness, use_client, import_from) and the hook putting
#: process logs into failed tests' reports: tests/support/. Reports first: fixtures
#: imports it, and pytest warns of a plugin imported before it could load it itself.
pytest_plugins = ["support.reports", "support.fixtures"]

#: ``ROADIE_SPEEDUPS_OFF=all`` (or names, ``roadie.speedups``) runs the suite with those
#: speed mechanisms off: the ``config`` fixture and the ``roadie run`` processes of the
#: system tests take it; a test of one mechanism is marked ``speedup("<name>")`` and
#: skipped while that one is off.
SPEEDUPS_OFF = "ROADIE_SPEEDUPS_OFF"

#: Tests that start redis-servers of their own (to restart, pause, fail over, or serve
#: TLS) whatever REDIS_URL says: CI runs them once, not again against REDIS_URL.
OWN_REDIS = ("tests/faults/", "tests/ha/", "tests/integration/test_bench_smoke.py",
             "tests/integration/test_load_smoke.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    off = set(parse_speedups_off(os.environ.get(SPEEDUPS_OFF, "").split(",")))
    for item in items:
        for mark in item.iter_markers("speedup"):
            if off & set(mark.args):
                item.add_marker(pytest.mark.skip(
                    reason=f"tests a speed mechanism turned off ({SPEEDUPS_OFF})"))
        where = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        if where.startswith(OWN_REDIS):
            item.add_marker(pytest.mark.own_redis)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the Redis shared by the session's tests."""
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    server = RedisServer(directory=tmp_path_factory.mktemp("session-redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A raw (bytes) client on an emptied database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def config(redis_url: str, r: redis.Redis) -> Config:
    """A ``Config`` for the session's Redis. Depends on ``r`` so the database is empty
    even for tests that never touch the raw client."""
    return Config(redis_url=redis_url, redis_url_configured=True,
                  speedups_off=tuple(os.environ.get(SPEEDUPS_OFF, "").split(",")))


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """``private_redis(*extra_args, appendonly=False)``: a started private redis-server
    with those settings (``support.redis.NOEVICTION``, ``"--appendfsync", "always"``...),
    stopped when the test ends."""
    made: list[RedisServer] = []

    def make(*extra_args: str, appendonly: bool = False) -> RedisServer:
        server = RedisServer(directory=tmp_path / f"private-redis-{len(made)}",
                             appendonly=appendonly, extra_args=list(extra_args))
        made.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in made:
            server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server (AOF on) that the test may stop, kill, restart or pause."""
    server = RedisServer(directory=tmp_path / "redis", appendonly=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
