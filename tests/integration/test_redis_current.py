"""roadie/current.py with roadie run's processors: a processor lends its own Redis
connection to its jobs as their ``roadie.redis_client()`` (``lend_thread_client``)
when the default client is on the same Redis with the same settings."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis
from support.wait import wait_until

import roadie
import roadie.current
from roadie.client import Client
from roadie.config import Config
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.launcher import Launcher

#: Every test pushes through the test's Redis (the ``client`` fixture, conftest.py).
pytestmark = pytest.mark.usefixtures("client")


@pytest.mark.speedup("lend_connection")
@pytest.mark.parametrize("same_redis", [True, False])
def test_a_processor_lends_its_connection_to_its_jobs(
    r: redis.Redis, config: Config, registry: Registry, client: Client,
    monkeypatch: pytest.MonkeyPatch, same_redis: bool,
) -> None:
    # The default client on other settings: no lending.
    other = Client(config.replace(socket_timeout_s=config.socket_timeout_s + 1))
    default = roadie.current.using(client if same_redis else other)
    used: list[tuple[str, Any]] = []

    class Borrow(Job, registry=registry, name="Borrow"):
        def perform(self, i: int) -> None:
            mine = roadie.redis_client()
            mine.incr("borrowed")
            used.append((threading.current_thread().name, mine))

    launcher = Launcher(config.replace(concurrency=2), hooks=Hooks(), registry=registry)
    with default:
        launcher.start()
        try:
            Borrow.perform_bulk([[i] for i in range(6)])
            wait_until(lambda: len(used) == 6, message="the six jobs did not run")
            fetchers = {p.thread.name: p.fetcher.redis for p in launcher.manager.processors}
        finally:
            launcher.stop()

    assert r.get("borrowed") == b"6"
    for thread, mine in used:
        assert (mine is fetchers[thread]) is same_redis
    # One client per thread either way.
    assert len({id(mine) for _, mine in used}) == len({thread for thread, _ in used})
