"""The event loop's short path to Redis (``roadie.redis.loop``): replies, error
replies, the fetch script after a Redis restart, a lost connection, a Redis that
does not answer, and the URL's database, against a real redis-server."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from support.redis import with_loop_redis

from roadie.config import Config
from roadie.embedded import RedisServer
from roadie.keys import Keys
from roadie.redis.loop import LoopRedis
from roadie.server.fetch import Fetcher

INFLIGHT_OF = "loopredis-test"


def test_replies_and_error_replies_come_back_as_redis_py_gives_them(
    r: redis.Redis, config: Config,
) -> None:
    r.set("text", "x")

    async def body(link: LoopRedis) -> list[Any]:
        out = [await link.execute("PING"), await link.execute("RPUSH", "list", "a", 2)]
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await link.execute("LPUSH", "text", "y")
        with pytest.raises(redis.exceptions.NoScriptError):
            await link.execute("EVALSHA", "0" * 40, 0)
        # An error reply leaves the connection usable: the next reply is its own.
        out.append(await link.execute("LRANGE", "list", 0, -1))
        return out

    assert with_loop_redis(config, body) == [b"PONG", 2, [b"a", b"2"]]


def test_the_fetch_script_is_loaded_again_after_redis_lost_it(
    r: redis.Redis, config: Config,
) -> None:
    keys = Keys(config.namespace)
    fetcher = Fetcher(r, config, keys, INFLIGHT_OF)
    r.rpush(keys.queue("default"), b'{"class":"A","args":[1]}', b'{"class":"A","args":[2]}')
    r.script_flush()  # what a restarted Redis without persistence forgets

    async def body(link: LoopRedis) -> list[bytes]:
        got = await fetcher.fetch_async(link.execute, 2)
        return [u.raw for u in got]

    assert with_loop_redis(config, body) == [
        b'{"class":"A","args":[2]}', b'{"class":"A","args":[1]}']
    assert r.llen(keys.inflight(INFLIGHT_OF)) == 2


def test_a_lost_connection_fails_one_command_and_the_next_reconnects(
    r: redis.Redis, config: Config,
) -> None:
    async def body(link: LoopRedis) -> tuple[Any, Any]:
        own_id = await link.execute("CLIENT", "ID")
        r.client_kill_filter(_id=own_id)
        with pytest.raises(redis.ConnectionError):
            await link.execute("PING")
        again = await link.execute("CLIENT", "ID")
        return own_id, again

    first, second = with_loop_redis(config, body)
    assert second != first  # a new connection


def test_a_redis_that_does_not_answer_times_out_and_the_connection_is_replaced(
    redis_server: RedisServer,
) -> None:
    config = Config(redis_url=redis_server.url, redis_url_configured=True)
    admin = redis.Redis.from_url(redis_server.url)

    async def body(link: LoopRedis) -> tuple[float, Any, Any]:
        before = await link.execute("CLIENT", "ID")
        admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
        t0 = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            await link.execute("PING")
        waited = time.monotonic() - t0
        # Once the pause is over, the late PONG of the timed-out PING is never read
        # as the reply of the next command: that goes on a new connection.
        return waited, before, await link.execute("CLIENT", "ID")

    try:
        waited, before, after = with_loop_redis(config, body, timeout_s=0.3)
    finally:
        admin.close()
    assert 0.25 < waited < 1.4
    assert after != before


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":  # unix:///path?db=N
        query = [kv for kv in parts.query.split("&") if kv and not kv.startswith("db=")]
        return urlunsplit(parts._replace(query="&".join([*query, f"db={db}"])))
    return urlunsplit(parts._replace(path=f"/{db}"))


def test_commands_go_to_the_urls_database(r: redis.Redis, redis_url: str) -> None:
    url = with_db(redis_url, 7)
    other = redis.Redis.from_url(url)
    other.flushdb()
    try:
        config = Config(redis_url=url, redis_url_configured=True)
        with_loop_redis(config, lambda link: link.execute("SET", "where", "seven"))
        assert other.get("where") == b"seven"
        assert r.get("where") is None
    finally:
        other.flushdb()
        other.close()
