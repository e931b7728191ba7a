"""A processor's own connection (``DedicatedRedis``): redis-py's results and errors,
with a shorter path per command."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import roadie
from roadie.client import Client
from roadie.config import Config
from roadie.middleware import Hooks
from roadie.redis import dedicated as dedicated_module
from roadie.redis.connection import connect
from roadie.redis.dedicated import DedicatedRedis
from roadie.registry import Registry
from roadie.server.launcher import Launcher


@pytest.fixture
def dedicated(config: Config) -> Iterator[DedicatedRedis]:
    client = DedicatedRedis(connect(config).connection_pool)
    yield client
    client.close()


def test_results_and_errors_are_redis_pys(r: redis.Redis, dedicated: DedicatedRedis) -> None:
    assert dedicated.hincrby("h", "a", 2) == 2  # a response callback: an int
    assert dedicated.hgetall("h") == {b"a": b"2"}
    assert dedicated.set("k", "v", nx=True) is True
    assert dedicated.set("k", "v", nx=True) is None
    sha = dedicated.script_load("return {KEYS[1], ARGV[1]}")
    assert dedicated.evalsha(sha, 1, "x", "y") == [b"x", b"y"]
    with pytest.raises(redis.exceptions.NoScriptError):
        dedicated.evalsha("0" * 40, 0)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        dedicated.lpush("h", "x")
    assert dedicated.get("k") == b"v"  # the connection is still in step after errors
    with dedicated.pipeline() as pipe:  # pipelines take their own pool connection
        assert pipe.incr("n").incr("n").execute() == [1, 2]


def test_a_broken_connection_is_replaced_once_without_an_error(
    r: redis.Redis, dedicated: DedicatedRedis
) -> None:
    first = dedicated.client_id()
    assert r.client_kill_filter(_id=first) == 1
    assert dedicated.incr("n") == 1  # sent on a new connection, once
    assert dedicated.client_id() != first
    assert r.get("n") == b"1"


def test_an_unreachable_redis_raises_a_connection_error() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = Config(redis_url=f"redis://127.0.0.1:{port}/0", redis_url_configured=True,
                    connect_timeout_s=0.5)
    with pytest.raises(redis.ConnectionError):  # redis-py 8 connects when created
        DedicatedRedis(connect(config).connection_pool).ping()


def test_processors_get_a_dedicated_connection(config: Config) -> None:
    launcher = Launcher(config, hooks=Hooks(), registry=Registry())
    processor = launcher._processor(0)
    try:
        assert isinstance(processor.fetcher.redis, DedicatedRedis)
        assert processor.owns_connection
        assert processor.registry is launcher.registry
    finally:
        processor.fetcher.redis.close()


def test_jobs_redis_client_takes_the_short_path(r: redis.Redis, client: Client) -> None:
    mine = roadie.redis_client()  # a thread that is not a processor: its own connection
    assert isinstance(mine, DedicatedRedis)
    assert mine.hincrby("h", "a", 1) == 1
    assert r.hget("h", "a") == b"1"


class Sends:
    """Stands in for ``dedicated._SEND`` (libc's send, GIL held): counts the writes
    it is given and sends at most ``limit`` bytes of each (-1: none, as on an error)."""

    def __init__(self, real: Any, limit: int | None = None) -> None:
        self.real, self.limit, self.calls = real, limit, 0

    def __call__(self, fd: int, data: bytes, size: int, flags: int) -> int:
        self.calls += 1
        if self.limit is not None and self.limit < 0:
            return -1
        n = size if self.limit is None else min(size, self.limit)
        return int(self.real(fd, data, n, flags))


needs_gil_send = pytest.mark.skipif(dedicated_module._SEND is None,
                                    reason="no libc send(2) through ctypes here")


@pytest.mark.speedup("gil_send")
@needs_gil_send
def test_short_commands_are_written_holding_the_gil_long_ones_by_redis_py(
    r: redis.Redis, dedicated: DedicatedRedis, monkeypatch: pytest.MonkeyPatch,
) -> None:
    sends = Sends(dedicated_module._SEND)
    monkeypatch.setattr(dedicated_module, "_SEND", sends)
    dedicated.ping()  # connected
    before = sends.calls
    assert dedicated.hincrby("h", "a", 3) == 3
    assert sends.calls == before + 1
    big = b"x" * (dedicated_module.GIL_SEND_MAX + 1)
    assert dedicated.set("big", big) is True  # through socket.sendall
    assert sends.calls == before + 1
    assert r.get("big") == big


@pytest.mark.speedup("gil_send")
@needs_gil_send
@pytest.mark.parametrize("limit", [7, 0, -1], ids=["partial", "nothing", "error"])
def test_what_the_gil_write_leaves_is_written_by_redis_py_once(
    r: redis.Redis, dedicated: DedicatedRedis, monkeypatch: pytest.MonkeyPatch, limit: int,
) -> None:
    dedicated.ping()
    sends = Sends(dedicated_module._SEND, limit)
    monkeypatch.setattr(dedicated_module, "_SEND", sends)
    assert dedicated.incr("n") == 1
    assert dedicated.rpush("l", "a" * 100, "b") == 2
    assert sends.calls == 2
    assert r.get("n") == b"1"
    assert r.lrange("l", 0, -1) == [b"a" * 100, b"b"]
