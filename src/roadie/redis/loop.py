"""The event loop's short path to Redis, for its fetches (``loopfetch``).

A fetch through ``redis.asyncio``'s client cost the loop about 150-250 µs of CPU
(connection pool lock, retry wrapper, timeout context, its parser's stream reads);
the loop pays that while the async jobs it runs wait for it. ``LoopRedis`` takes
one connection of the loop's client, made and set up by redis-py (TLS, AUTH,
SELECT, Sentinel), for itself, writes each command on it and feeds what comes back
to a ``hiredis`` reader of its own: about 80 µs less per fetch
(``benchmarks/micro.py``, "fetch of 10 jobs on the event loop"). It is used by one
fetch at a time (``LoopFetcher`` serializes them), so a reply always belongs to the
command just written. Any trouble (a timeout, a broken connection, a cancellation)
closes the connection; the next command opens it again, as redis-py would.

It reads and writes the connection's asyncio streams (``_reader``, ``_writer``):
``usable()`` checks what can be checked before connecting, and a connection made
without those streams sends every command through the client instead (as with
``loop_connection`` off).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis
import redis.asyncio.connection

from roadie.log import log
from roadie.redis.connection import ASYNC_PARSER, pool_connection_async

try:
    import hiredis

    HAVE_HIREDIS = True
except ImportError:  # pragma: no cover - redis[hiredis] installs it
    HAVE_HIREDIS = False

#: Bytes asked of the socket per read.
READ_SIZE = 65536

#: What ``LoopRedis`` calls on a ``redis.asyncio`` connection, besides its streams.
_CONNECTION_METHODS = ("connect", "disconnect", "pack_command")


def _hiredis_reader() -> Any:
    """A hiredis reader that raises what redis-py's parser would: its error classes
    (``ASYNC_PARSER.parse_error``) and its protocol error."""
    return hiredis.Reader(protocolError=redis.exceptions.InvalidResponse,
                          replyError=ASYNC_PARSER.parse_error)


def _layout_fits() -> bool:
    """Whether redis.asyncio's connections have what ``LoopRedis`` calls, and hiredis's
    reader takes what ``_hiredis_reader`` gives it."""
    base = getattr(redis.asyncio.connection, "AbstractConnection", None)
    if base is None or not isinstance(getattr(base, "is_connected", None), property) or not all(
            callable(getattr(base, name, None)) for name in _CONNECTION_METHODS):
        return False
    try:
        _hiredis_reader()
    except TypeError:  # a hiredis whose Reader takes other arguments
        return False
    return callable(getattr(ASYNC_PARSER, "parse_error", None))


#: Whether this redis-py and hiredis have what ``LoopRedis`` uses (``LoopRedis.usable``).
_USABLE = HAVE_HIREDIS and _layout_fits()
if HAVE_HIREDIS and not _USABLE:
    log.debug("loop_connection: redis-py %s lacks what it needs; redis.asyncio's client "
              "instead", redis.__version__)


def _has_streams(conn: Any) -> bool:
    """Whether connected ``conn`` keeps its asyncio streams where ``LoopRedis`` reads
    and writes them."""
    return isinstance(getattr(conn, "_reader", None), asyncio.StreamReader) and isinstance(
        getattr(conn, "_writer", None), asyncio.StreamWriter)


class LoopRedis:
    """Commands on one connection of ``client`` (a ``redis.asyncio`` client), on the
    loop that made it; one at a time."""

    def __init__(self, client: Any, timeout_s: float) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._conn: Any = None
        self._parser: Any = None
        #: Set when a connection turned out to lack the streams: the client's path.
        self._through_client = False

    @staticmethod
    def usable() -> bool:
        """Whether this path can work here (else the loop uses the client itself)."""
        return _USABLE

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply; an error reply is raised, as
        redis-py raises it (``NoScriptError``, ``ReadOnlyError``, ...)."""
        if self._through_client:
            return await self.client.execute_command(*args)
        conn = self._conn
        if conn is None or not conn.is_connected:
            conn = await self._connect()
            if conn is None:
                return await self.client.execute_command(*args)
        parser = self._parser
        try:
            async with asyncio.timeout(self.timeout_s):
                conn._writer.writelines(conn.pack_command(*args))
                reply = parser.gets()
                while reply is False:
                    data = await conn._reader.read(READ_SIZE)
                    if not data:
                        raise redis.ConnectionError("Redis closed the connection")
                    parser.feed(data)
                    reply = parser.gets()
        except BaseException as exc:
            # Whatever the reply would have been, it must never be read as the next
            # command's: this connection is done.
            await self.close()
            if isinstance(exc, TimeoutError):
                raise redis.TimeoutError(
                    f"Redis did not answer within {self.timeout_s} s") from exc
            if isinstance(exc, OSError):
                raise redis.ConnectionError(f"connection to Redis lost: {exc}") from exc
            raise
        if isinstance(reply, redis.ResponseError):
            raise reply
        return reply

    async def _connect(self) -> Any:
        """The connection, connected; None when it has no streams to use (it then goes
        back to the pool, and every command through the client)."""
        conn = self._conn
        if conn is None:
            conn = await pool_connection_async(self.client.connection_pool)
            self._conn = conn
        await conn.connect()
        if not _has_streams(conn):
            log.debug("loop_connection: redis-py %s keeps no asyncio streams on %s; "
                      "redis.asyncio's client instead", redis.__version__, type(conn).__name__)
            self._through_client = True
            self._conn = None
            await self.client.connection_pool.release(conn)
            return None
        self._parser = _hiredis_reader()
        return conn

    async def close(self) -> None:
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(BaseException):
                await conn.disconnect(nowait=True)
