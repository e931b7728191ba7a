"""The fault suite's TCP proxy itself: forward, cut, stall, delay, restore."""

from __future__ import annotations

import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from tcpproxy import TcpProxy

from roadie.embedded import RedisServer

pytestmark = pytest.mark.redis


def client(proxy: TcpProxy) -> redis.Redis:
    # No retries: redis-py's default ones would hide the fault for seconds.
    return redis.Redis(port=proxy.port, socket_timeout=0.5, socket_connect_timeout=0.5,
                       retry=Retry(NoBackoff(), 0))


def test_proxy_forwards_cuts_stalls_delays_and_restores(redis_server: RedisServer) -> None:
    with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        c = client(proxy)
        assert c.set("k", "v")
        assert c.get("k") == b"v"
        assert proxy.connections == 2  # client and upstream sides of one connection

        proxy.cut()
        assert proxy.connections == 0
        with pytest.raises(redis.ConnectionError):
            c.get("k")  # the open connection is closed, a new one refused
        with pytest.raises(redis.ConnectionError, match="refused"):
            client(proxy).ping()

        proxy.restore()
        assert c.get("k") == b"v"

        proxy.stall()
        t0 = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            c.get("k")  # connected, but no reply within the 0.5 s socket timeout
        assert time.monotonic() - t0 >= 0.45
        assert proxy.connections >= 2  # stalled, not cut
        proxy.restore()
        c2 = client(proxy)
        assert c2.get("k") == b"v"

        proxy.delay(150)
        t0 = time.monotonic()
        assert c2.get("k") == b"v"
        took = time.monotonic() - t0
        assert took >= 0.29, took  # one chunk each way, 150 ms each
        proxy.restore()
        t0 = time.monotonic()
        assert c2.get("k") == b"v"
        assert time.monotonic() - t0 < 0.1
        c.close()
        c2.close()
