"""roadie's pytest plugin, loaded by pytest wherever roadie is installed (entry point
``pytest11``; turn it off with ``-p no:roadie``). Its fixtures:

``roadie_fake``
    Pushes are kept in memory for the test (``roadie.testing.fake()``); the fixture is
    the ``FakeClient``: ``roadie_fake.jobs()``, ``.drain()``, ``.perform_one()``,
    ``.clear()``, and ``WelcomeEmail.jobs``.
``roadie_inline``
    Jobs run when pushed (``roadie.testing.inline()``); the fixture is the ``InlineClient``.
``roadie_redis``
    A real redis-server, started once for the session (roadie's embedded server, a
    throwaway TCP server in a temporary folder), emptied before each test; the default
    client points at it for the test, and the fixture is that ``roadie.Client``
    (``roadie_redis.redis`` is a raw client, ``roadie_redis.config.redis_url`` its URL).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from roadie.client import Client
from roadie.config import Config
from roadie.testing import FakeClient, InlineClient, fake, inline, using

if TYPE_CHECKING:
    from roadie.embedded import RedisServer


@pytest.fixture
def roadie_fake() -> Iterator[FakeClient]:
    """Pushes are collected in memory for this test."""
    with fake() as client:
        yield client


@pytest.fixture
def roadie_inline() -> Iterator[InlineClient]:
    """Jobs run at push time for this test."""
    with inline() as client:
        yield client


@pytest.fixture(scope="session")
def roadie_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the whole session (no persistence)."""
    from roadie.embedded import RedisServer

    server = RedisServer(directory=tmp_path_factory.mktemp("roadie-redis"), appendonly=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def roadie_redis(roadie_redis_server: RedisServer) -> Iterator[Client]:
    """The default client on the session's redis-server, emptied for this test."""
    client = Client(Config(redis_url=roadie_redis_server.url, redis_url_configured=True))
    client.redis.flushdb()
    try:
        with using(client):
            yield client
    finally:
        client.redis.close()
