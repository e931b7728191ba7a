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
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis

from roadie.redis.connection import ASYNC_PARSER

try:
    import hiredis

    HAVE_HIREDIS = True
except ImportError:  # pragma: no cover - redis[hiredis] installs it
    HAVE_HIREDIS = False

#: Bytes asked of the socket per read.
READ_SIZE = 65536


class LoopRedis:
    """Commands on one connection of ``client`` (a ``redis.asyncio`` client), on the
    loop that made it; one at a time."""

    def __init__(self, client: Any, timeout_s: float) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._conn: Any = None
        self._parser: Any = None

    @staticmethod
    def usable() -> bool:
        """Whether this path can work here (else the loop uses the client itself)."""
        return HAVE_HIREDIS

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply; an error reply is raised, as
        redis-py raises it (``NoScriptError``, ``ReadOnlyError``, ...)."""
        conn = self._conn
        if conn is None or not conn.is_connected:
            conn = await self._connect()
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
        conn = self._conn
        if conn is None:
            pool = self.client.connection_pool
            try:
                conn = await pool.get_connection()
            except TypeError:  # redis-py before 5.3 wants a command name
                conn = await pool.get_connection("EVALSHA")
            self._conn = conn
        await conn.connect()
        self._parser = hiredis.Reader(protocolError=redis.exceptions.InvalidResponse,
                                      replyError=ASYNC_PARSER.parse_error)
        return conn

    async def close(self) -> None:
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(BaseException):
                await conn.disconnect(nowait=True)
