"""What roadie relies on in redis-py beyond its documented API, pinned against a real
redis-server: the attributes, the class layout and the behaviour that
``src/roadie/redis`` (and ``pushwrite.py``, ``acl.py``) reach into, and that each speed
mechanism built on them reports itself usable. docs/internals.md ("redis-py
internals") lists them; ``.ci/redis-py-versions`` runs this module on every supported
redis-py line. Each test is named after the internal it pins, and fails when redis-py
changes it: then either roadie adapts, or the fast path's own check turns it off.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.connection
import redis.asyncio.sentinel
import redis.connection
import redis.sentinel
from support.redis import with_loop_redis
from support.wait import wait_until

from roadie.acl import missing
from roadie.config import Config
from roadie.embedded import RedisServer, free_port
from roadie.keys import Keys
from roadie.redis import connection as connection_module
from roadie.redis import dedicated as dedicated_module
from roadie.redis import loop as loop_module
from roadie.redis.connection import (
    FailoverError,
    connect,
    connect_async,
    parse_sentinel_url,
    pool_connection,
    pool_connection_async,
    sentinel_primary,
)
from roadie.redis.dedicated import DedicatedRedis, gil_send_usable, short_path_usable
from roadie.redis.loop import LoopRedis
from roadie.redis.sentinel import BlockingSentinelPool
from roadie.redisbin import find_redis_server

REDIS_PY = tuple(int(p) for p in redis.__version__.split(".")[:2])

#: Error replies and the class each must be raised as, on every path roadie reads
#: replies by (a script's ``redis.error_reply`` sends exactly the text given).
ERROR_REPLIES = [
    ("MASTERDOWN Link with MASTER is down", FailoverError),
    ("UNBLOCKED force unblock from blocking operation, instance state changed",
     FailoverError),
    ("NOREPLICAS Not enough good replicas to write.", FailoverError),
    ("READONLY You can't write against a read only replica.", redis.ReadOnlyError),
    ("OOM command not allowed when used memory > 'maxmemory'.",
     redis.exceptions.OutOfMemoryError),
    ("ERR something else", redis.ResponseError),
]


def error_script(text: str) -> tuple[str, ...]:
    return ("EVAL", "return redis.error_reply(ARGV[1])", "0", text)


@pytest.fixture
def dedicated(config: Config) -> Iterator[DedicatedRedis]:
    """A processor's own connection, every fast path on (whatever the suite's
    ``speedups_off``: these tests pin what the fast paths stand on)."""
    client = DedicatedRedis(connect(config).connection_pool)
    yield client
    client.close()


def on_loop(body: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(body())


# --- every fast path is usable on this redis-py -------------------------------------


def test_each_fast_path_reports_itself_usable(dedicated: DedicatedRedis) -> None:
    assert short_path_usable(dedicated) and dedicated._short_path
    if sys.platform.startswith("linux"):  # libc's send and MSG_DONTWAIT are there
        assert dedicated_module._SEND is not None
    assert gil_send_usable(dedicated) and dedicated._gil_send
    assert LoopRedis.usable()


# --- the processor's own connection (dedicated.py) ----------------------------------


def test_redis_connection_is_the_single_connection_clients_one_connection(
    dedicated: DedicatedRedis,
) -> None:
    conn = dedicated.connection
    assert isinstance(conn, redis.connection.AbstractConnection)
    own = dedicated.client_id()
    assert [dedicated.client_id() for _ in range(3)] == [own] * 3
    assert dedicated.connection is conn
    # redis-py's own path (HIMPORT, short_command_path off) uses the same connection:
    # falling back mixes no second conversation in.
    assert redis.Redis.execute_command(dedicated, "CLIENT", "ID") == own


def test_connection_sock_is_the_plain_socket_or_none_when_disconnected(
    dedicated: DedicatedRedis,
) -> None:
    conn: Any = dedicated.connection
    assert dedicated.ping() is True
    sock = conn._sock
    assert type(sock) is socket.socket
    assert sock.fileno() >= 0
    conn.disconnect()
    assert conn._sock is None  # the short path then lets send_command connect
    conn.send_command("PING")
    assert type(conn._sock) is socket.socket
    assert conn.read_response() == b"PONG"


def test_pack_command_gives_the_bytes_the_gil_write_sends(
    r: redis.Redis, dedicated: DedicatedRedis,
) -> None:
    conn: Any = dedicated.connection
    dedicated.ping()
    packed = conn.pack_command("RPUSH", "k", b"v\r\n", 12)
    assert all(type(p) in (bytes, memoryview) for p in packed)
    data = b"".join(packed)
    assert data == b"*4\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$2\r\n12\r\n"
    send = dedicated_module._SEND
    assert send is not None
    sent = send(conn._sock.fileno(), data, len(data), dedicated_module._SEND_FLAGS)
    assert sent == len(data)
    # redis-py reads the reply of a command it did not write.
    assert dedicated.parse_response(conn, "RPUSH") == 2
    assert dedicated.set("s", "x") is True  # in step: the next reply is its own
    assert r.lrange("k", 0, -1) == [b"v\r\n", b"12"]


def test_send_packed_command_writes_what_a_partial_gil_write_left(
    r: redis.Redis, dedicated: DedicatedRedis,
) -> None:
    conn: Any = dedicated.connection
    dedicated.ping()
    data = b"".join(conn.pack_command("RPUSH", "l", "a" * 100, "b"))
    send = dedicated_module._SEND
    assert send is not None
    assert send(conn._sock.fileno(), data, 7, dedicated_module._SEND_FLAGS) == 7
    conn.send_packed_command([data[7:]], check_health=False)
    assert dedicated.parse_response(conn, "RPUSH") == 2
    assert r.lrange("l", 0, -1) == [b"a" * 100, b"b"]


def test_send_command_and_parse_response_give_what_redis_pys_own_path_gives(
    r: redis.Redis, config: Config,
) -> None:
    """The short path is redis-py's ``send_command`` then ``parse_response`` with the
    command's options (callbacks, ``EMPTY_RESPONSE``, ``NEVER_DECODE``)."""
    short = DedicatedRedis(connect(config).connection_pool)
    own = DedicatedRedis(connect(config).connection_pool, short_path=False, gil_send=False)
    r.hset("h", mapping={"a": 1, "b": "x"})
    r.zadd("z", {"m1": 1.5, "m2": 2})
    sha = r.script_load("return {KEYS[1], ARGV[1]}")

    def calls(c: redis.Redis) -> list[Any]:
        return [
            c.hgetall("h"), c.hincrby("h", "n", 2), c.set("s", "v", nx=True),
            c.set("s", "v", nx=True), c.mget([]), c.mget(["s", "none"]),
            c.zrange("z", 0, -1, withscores=True), c.evalsha(sha, 1, "x", "y"),
            c.script_exists(sha), c.info("server")["redis_version"], c.exists("s", "none"),
            c.delete("s"),
        ]

    try:
        got = calls(short)
        r.delete("s")
        r.hdel("h", "n")
        assert got == calls(own)
        assert got[2] is True and got[3] is None and got[4] == []
        assert got[6] == [(b"m1", 1.5), (b"m2", 2.0)]
    finally:
        short.close()
        own.close()


@pytest.mark.parametrize(("text", "error"), ERROR_REPLIES, ids=[e[0].split()[0] for e in
                                                                   ERROR_REPLIES])
def test_read_response_raises_the_parsers_exception_classes_and_stays_in_step(
    dedicated: DedicatedRedis, text: str, error: type[Exception],
) -> None:
    own = dedicated.client_id()
    with pytest.raises(error) as raised:
        dedicated.execute_command(*error_script(text))
    assert type(raised.value) is error
    with pytest.raises(redis.exceptions.NoScriptError):
        dedicated.evalsha("0" * 40, 0)
    assert dedicated.client_id() == own  # an error reply keeps the connection


def test_read_response_drops_a_connection_redis_closed_and_send_command_reconnects(
    r: redis.Redis, dedicated: DedicatedRedis,
) -> None:
    conn: Any = dedicated.connection
    first = dedicated.client_id()
    assert r.client_kill_filter(_id=first) == 1
    with pytest.raises(redis.ConnectionError):
        conn.send_command("PING")
        conn.read_response()
    assert conn._sock is None  # redis-py disconnected it on the error
    second = dedicated.client_id()
    assert second != first
    # The short path: a broken connection is replaced once, without an error.
    assert r.client_kill_filter(_id=second) == 1
    assert dedicated.incr("n") == 1
    assert r.get("n") == b"1"


@pytest.mark.own_redis
def test_read_response_raises_timeout_error_and_disconnects_when_redis_is_silent(
    private_redis: Callable[..., RedisServer],
) -> None:
    server = private_redis()
    admin = server.client()
    config = Config(redis_url=server.url, redis_url_configured=True, socket_timeout_s=0.3)
    client = DedicatedRedis(connect(config).connection_pool)
    try:
        client.ping()
        server.pause()
        try:
            with pytest.raises(redis.TimeoutError):
                client.incr("n")
            assert client.connection._sock is None
        finally:
            server.resume()
        # The INCR reached Redis and runs once it answers again; the short path did
        # not send it twice (the command may have run: no retry after a timeout).
        wait_until(lambda: admin.get("n") == b"1", message="the timed-out INCR did not run")
        assert client.incr("n") == 2
        assert admin.get("n") == b"2"
    finally:
        client.close()
        admin.close()


def test_disconnect_in_a_forked_child_leaves_the_parents_connection_open(
    dedicated: DedicatedRedis,
) -> None:
    """redis-py's ``disconnect`` shuts a socket down only in the pid that made it:
    roadie's at-fork hook closes the child's copies with it."""
    parent_id = dedicated.client_id()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running any cleanup
        try:
            os.close(read_end)
            closed = dedicated.connection._sock is None
            child_id = dedicated.client_id() if closed else -1
            os.write(write_end, str(child_id).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_id = int(pipe.read() or b"-2")
    os.waitpid(pid, 0)
    assert child_id not in (-1, -2, parent_id)  # its own connection
    assert dedicated.client_id() == parent_id  # the parent's was not shut down


def test_pipeline_of_a_single_connection_client_takes_a_pool_connection(
    dedicated: DedicatedRedis,
) -> None:
    own = dedicated.client_id()
    for transaction in (True, False):
        with dedicated.pipeline(transaction=transaction) as pipe:
            pipe.client_id()
            pipe.incr("n")
            pipe.incr("n")
            pipe.lpush("n", "x")
            replies = pipe.execute(raise_on_error=False)
        assert replies[0] != own
        assert replies[1:3] == ([1, 2] if transaction else [3, 4])
        assert isinstance(replies[3], redis.ResponseError)
    assert dedicated.client_id() == own  # the short path's connection, untouched


def test_single_connection_lock_is_the_lock_redis_pys_own_path_takes(
    dedicated: DedicatedRedis,
) -> None:
    lock = getattr(dedicated, "single_connection_lock", None)
    if lock is None:
        # Before redis-py 5.3 its clients took no lock of their own: roadie's is alone.
        assert REDIS_PY < (5, 3)
        assert isinstance(dedicated._command_lock, type(threading.RLock()))
        return
    assert dedicated._command_lock is lock
    done = threading.Event()

    def own_path() -> None:
        redis.Redis.execute_command(dedicated, "PING")
        done.set()

    with lock:
        thread = threading.Thread(target=own_path, daemon=True)
        thread.start()
        # Held by the short path, the lock keeps redis-py's path off the connection
        # (unlocked, the PING takes a millisecond).
        assert not done.wait(0.3)
    assert done.wait(10)
    thread.join(10)


# --- redis-py's parsers and connections (connection.py) -----------------------------


@pytest.mark.parametrize(("text", "error"), ERROR_REPLIES, ids=[e[0].split()[0] for e in
                                                                   ERROR_REPLIES])
def test_parser_exception_classes_on_redis_asyncio_and_the_loop_connection(
    config: Config, text: str, error: type[Exception],
) -> None:
    async def body(link: LoopRedis) -> None:
        for execute in (link.client.execute_command, link.execute):
            with pytest.raises(error) as raised:
                await execute(*error_script(text))
            assert type(raised.value) is error
        assert await link.execute("PING") == b"PONG"

    with_loop_redis(config, body)


def test_pool_get_connection_takes_no_command_name_from_5_3_and_needs_one_before(
    config: Config,
) -> None:
    client = connect(config)
    pool = client.connection_pool
    if REDIS_PY < (5, 3):
        with pytest.raises(TypeError):
            pool.get_connection()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        conn = pool_connection(pool)
    try:
        conn.send_command("PING")
        assert conn.read_response() == b"PONG"
    finally:
        pool.release(conn)
        client.close()

    async def body() -> None:
        aclient = await connect_async(config)
        apool = aclient.connection_pool
        if REDIS_PY < (5, 3):
            with pytest.raises(TypeError):
                await apool.get_connection()
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            aconn = await pool_connection_async(apool)
        try:
            await aconn.send_command("PING")
            assert await aconn.read_response() == b"PONG"
        finally:
            await apool.release(aconn)
            await aclient.aclose()

    on_loop(body)


def test_pack_commands_and_read_response_read_each_reply_of_a_batch_in_step(
    r: redis.Redis, config: Config,
) -> None:
    """pushwrite.py and acl.py send a batch in one write and read its replies one by
    one: an error reply is raised for its command, and the next one is read after it."""
    commands = [("SET", "s", "x"), ("LPUSH", "s", "y"), ("GET", "s")]

    def check(replies: list[Any]) -> None:
        assert replies[0] == b"OK" and replies[2] == b"x"
        assert isinstance(replies[1], redis.ResponseError) and "WRONGTYPE" in str(replies[1])

    client = connect(config)
    conn = pool_connection(client.connection_pool)
    try:
        conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
        check(replies)
    finally:
        client.connection_pool.release(conn)
        client.close()
    r.delete("s")

    async def body() -> None:
        aclient = await connect_async(config)
        aconn = await pool_connection_async(aclient.connection_pool)
        try:
            await aconn.send_packed_command(aconn.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await aconn.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
            check(replies)
        finally:
            await aclient.connection_pool.release(aconn)
            await aclient.aclose()

    on_loop(body)


def test_pool_get_connection_and_batches_carry_acls_probes(r: redis.Redis) -> None:
    """``roadie.acl.missing`` (``roadie check``) on a pool connection of its own: the
    default user may use everything, so nothing is missing and all was tested."""
    result = missing(r, Keys(""), ["default"])
    assert (result.commands, result.keys, result.untested) == ([], {}, False)


def test_driver_info_spares_redis_py_a_metadata_lookup_per_connection(
    config: Config, monkeypatch: pytest.MonkeyPatch,
) -> None:
    has_driver_info = importlib.util.find_spec("redis.driver_info") is not None
    assert bool(connection_module._DRIVER) == has_driver_info
    looked_up: list[str] = []
    real = importlib.metadata.version

    def version(name: str) -> str:
        looked_up.append(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    for _ in range(3):
        client = connect(config)
        client.ping()
        client.close()

    async def body() -> None:
        aclient = await connect_async(config)
        await aclient.ping()
        await aclient.aclose()

    on_loop(body)
    assert "redis" not in looked_up


def test_url_query_argument_parsers_type_a_sentinel_urls_options() -> None:
    options = parse_sentinel_url(
        "redis+sentinel://127.0.0.1:1/svc?socket_timeout=2.5&socket_keepalive=true"
        "&db=3&client_name=me").options
    assert options["socket_timeout"] == 2.5
    assert options["socket_keepalive"] is True
    assert options["db"] == 3
    assert options["client_name"] == "me"  # no parser for it: as given


# --- the event loop's connection (loop.py) ------------------------------------------


def test_async_connection_reader_and_writer_carry_the_loops_commands(
    r: redis.Redis, config: Config,
) -> None:
    r.rpush("big", *[b"%05d" % i + b"x" * 95 for i in range(2000)])  # 200 KB: many reads

    async def body(link: LoopRedis) -> None:
        assert await link.execute("PING") == b"PONG"
        conn = link._conn
        assert isinstance(conn, redis.asyncio.connection.AbstractConnection)
        assert isinstance(conn._reader, asyncio.StreamReader)
        assert isinstance(conn._writer, asyncio.StreamWriter)
        assert not link._through_client
        got = await link.execute("LRANGE", "big", 0, -1)
        assert len(got) == 2000 and got[1999].startswith(b"01999x")
        assert await link.execute("RPUSH", "list", "a", 2) == 2
        with pytest.raises(redis.exceptions.NoScriptError):
            await link.execute("EVALSHA", "0" * 40, 0)
        assert await link.execute("LRANGE", "list", 0, -1) == [b"a", b"2"]
        assert link._conn is conn

    with_loop_redis(config, body)


def test_hiredis_reader_raises_with_the_async_parsers_parse_error_and_protocol_error() -> None:
    reader = loop_module._hiredis_reader()
    reader.feed(b"-NOSCRIPT No matching script\r\n-MASTERDOWN down\r\n:1\r\n$3\r\nab")
    first, second = reader.gets(), reader.gets()
    assert type(first) is redis.exceptions.NoScriptError
    assert type(second) is FailoverError
    assert reader.gets() == 1
    assert reader.gets() is False  # a reply not all there yet
    reader.feed(b"c\r\n")
    assert reader.gets() == b"abc"
    reader.feed(b"?what\r\n")
    with pytest.raises(redis.exceptions.InvalidResponse):
        reader.gets()


def test_async_disconnect_nowait_clears_is_connected_and_connect_opens_it_again(
    config: Config,
) -> None:
    async def body(link: LoopRedis) -> None:
        first = await link.execute("CLIENT", "ID")
        conn = link._conn
        await link.close()  # disconnect(nowait=True)
        assert not conn.is_connected
        assert conn._reader is None and conn._writer is None
        second = await link.execute("CLIENT", "ID")
        assert link._conn is conn and conn.is_connected  # the same connection, again
        assert second != first

    with_loop_redis(config, body)


def test_async_reader_ends_when_redis_closes_and_the_next_command_reconnects(
    r: redis.Redis, config: Config,
) -> None:
    async def body(link: LoopRedis) -> None:
        first = await link.execute("CLIENT", "ID")
        assert r.client_kill_filter(_id=first) == 1
        with pytest.raises(redis.ConnectionError):
            await link.execute("PING")
        assert not link._conn.is_connected
        assert await link.execute("CLIENT", "ID") != first

    with_loop_redis(config, body)


@pytest.mark.own_redis
def test_async_disconnect_after_a_timeout_means_the_late_reply_is_never_read(
    private_redis: Callable[..., RedisServer],
) -> None:
    server = private_redis()
    config = Config(redis_url=server.url, redis_url_configured=True)

    async def body(link: LoopRedis) -> None:
        before = await link.execute("CLIENT", "ID")
        server.pause()
        try:
            with pytest.raises(redis.TimeoutError):
                await link.execute("INCR", "n")
            assert not link._conn.is_connected
        finally:
            server.resume()
        # The INCR's reply comes late, to the closed connection; each later reply is
        # its own command's, on a new one.
        assert await link.execute("ECHO", "mine") == b"mine"
        assert await link.execute("CLIENT", "ID") != before

    with_loop_redis(config, body, timeout_s=0.3)


# --- Sentinel (sentinel.py) ---------------------------------------------------------


SERVICE = "contract"


class SentinelProcess:
    """A redis-server in sentinel mode, monitoring one primary, quorum 1."""

    def __init__(self, directory: Path, primary_port: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = directory / "sentinel.conf"
        conf.write_text("\n".join([
            f"port {self.port}", "bind 127.0.0.1", f"dir {directory}",
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 1", "",
        ]))
        self.log = (directory / "sentinel.log").open("wb")
        self.popen = subprocess.Popen([find_redis_server(), str(conf), "--sentinel"],
                                      stdout=self.log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=3)

        def answers() -> bool:
            assert self.popen.poll() is None, "the sentinel exited"
            try:
                return bool(self.client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, message="the sentinel did not answer")

    def primary_port(self) -> int:
        return int(self.client.execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)[1])

    def monitor(self, port: int) -> None:
        """Name another primary for the service (what a failover ends with)."""
        self.client.execute_command("SENTINEL", "REMOVE", SERVICE)
        self.client.execute_command("SENTINEL", "MONITOR", SERVICE, "127.0.0.1", port, 1)
        wait_until(lambda: self.primary_port() == port, message="the sentinel kept the old one")

    def stop(self) -> None:
        self.client.close()
        self.popen.kill()
        self.popen.wait(10)
        self.log.close()


@pytest.fixture
def sentinel_pair(private_redis: Callable[..., RedisServer],
                  tmp_path: Path) -> Iterator[tuple[SentinelProcess, RedisServer, RedisServer]]:
    """A sentinel naming primary ``a`` for ``SERVICE``, and a second server ``b``."""
    a, b = private_redis(), private_redis()
    sentinel = SentinelProcess(tmp_path / "sentinel", a.port)
    try:
        yield sentinel, a, b
    finally:
        sentinel.stop()


def _port(info: dict[str, Any]) -> int:
    return int(info["tcp_port"])


@pytest.mark.own_redis
def test_sentinel_managed_connection_asks_the_sentinels_again_when_it_reconnects(
    sentinel_pair: tuple[SentinelProcess, RedisServer, RedisServer],
) -> None:
    """A connection closed under a client (a retry, a processor's own connection)
    reconnects to the primary the sentinels name now, not to the one it had: through
    the short path, through redis-py's own path, and on redis.asyncio."""
    sentinel, a, b = sentinel_pair
    config = Config(redis_url=f"redis+sentinel://127.0.0.1:{sentinel.port}/{SERVICE}",
                    redis_url_configured=True)
    plain = connect(config, max_connections=4, blocking=True)
    short = DedicatedRedis(plain.connection_pool)
    own_path = DedicatedRedis(plain.connection_pool, short_path=False)
    try:
        assert sentinel_primary(plain) == (SERVICE, "127.0.0.1", a.port)
        assert short._short_path and short._gil_send
        assert _port(short.info("server")) == a.port
        assert _port(own_path.info("server")) == a.port
        sentinel.monitor(b.port)
        for client in (short, own_path):
            client.connection.disconnect()
            assert _port(client.info("server")) == b.port
    finally:
        short.close()
        own_path.close()
        plain.close()

    async def body() -> None:
        aclient = await connect_async(config)
        try:
            conn = await pool_connection_async(aclient.connection_pool)
            await conn.send_command("INFO", "server")
            assert f"tcp_port:{b.port}".encode() in await conn.read_response()
            sentinel.monitor(a.port)  # and back
            await conn.disconnect()
            await conn.send_command("INFO", "server")
            assert f"tcp_port:{a.port}".encode() in await conn.read_response()
            await aclient.connection_pool.release(conn)
        finally:
            await aclient.aclose()

    on_loop(body)


@pytest.mark.own_redis
def test_blocking_connection_pool_disconnect_of_idle_connections_leaves_busy_ones(
    sentinel_pair: tuple[SentinelProcess, RedisServer, RedisServer],
) -> None:
    """What redis-py's sentinel pool calls when the primary changes
    (``disconnect(inuse_connections=False)``), on roadie's blocking sentinel pool."""
    sentinel, _, _ = sentinel_pair
    config = Config(redis_url=f"redis+sentinel://127.0.0.1:{sentinel.port}/{SERVICE}",
                    redis_url_configured=True)
    client = connect(config, max_connections=3, blocking=True)
    pool = client.connection_pool
    assert isinstance(pool, BlockingSentinelPool)
    busy, idle = pool_connection(pool), pool_connection(pool)
    try:
        for conn in (busy, idle):
            conn.send_command("PING")
            assert conn.read_response() == b"PONG"
        pool.release(idle)
        pool.disconnect(inuse_connections=False)
        assert idle._sock is None
        assert busy._sock is not None
        busy.send_command("PING")
        assert busy.read_response() == b"PONG"
        pool.disconnect()
        assert busy._sock is None
    finally:
        pool.release(busy)
        client.close()


@pytest.mark.own_redis
def test_sentinel_discover_master_reports_no_primary_in_one_short_line(
    sentinel_pair: tuple[SentinelProcess, RedisServer, RedisServer],
) -> None:
    sentinel, _, _ = sentinel_pair
    config = Config(redis_url=f"redis+sentinel://127.0.0.1:{sentinel.port}/nope",
                    redis_url_configured=True)
    expected = f"no sentinel (127.0.0.1:{sentinel.port}) names a primary for 'nope'"
    client = connect(config)
    with pytest.raises(redis.sentinel.MasterNotFoundError) as raised:
        client.ping()
    client.close()
    assert str(raised.value).startswith(expected)

    async def body() -> None:
        aclient = await connect_async(config)
        try:
            with pytest.raises(redis.asyncio.sentinel.MasterNotFoundError) as raised:
                await aclient.ping()
            assert str(raised.value).startswith(expected)
        finally:
            await aclient.aclose()

    on_loop(body)
