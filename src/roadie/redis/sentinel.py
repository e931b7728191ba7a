"""redis-py's Redis Sentinel classes, as roadie uses them (``connection.connect``
builds clients from them for ``redis+sentinel://`` URLs): connections that ask the
sentinels for the primary each time they reconnect, a pool whose callers wait for a
free connection, and a short error when no sentinel names a primary.
"""

from __future__ import annotations

import inspect
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel


class SentinelConnection(redis.sentinel.SentinelManagedConnection):
    """A connection to the primary the sentinels name, also when it reconnects.

    redis-py 8.1 reopens a closed connection inside ``send_packed_command`` (after a
    retry, or on a client's dedicated connection) to the host it had, without asking
    the sentinels: after a failover it would go back to the old primary, forever once
    that one returns as a replica (READONLY). Reconnecting through ``connect`` asks
    them each time.
    """

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._sock:
            self.connect()  # type: ignore[no-untyped-call, unused-ignore]
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call, unused-ignore]


class SentinelSSLConnection(SentinelConnection, redis.SSLConnection):
    pass


class AsyncSentinelConnection(redis.asyncio.sentinel.SentinelManagedConnection):
    """``SentinelConnection`` for ``redis.asyncio``."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self.is_connected:
            await self.connect()  # type: ignore[no-untyped-call, unused-ignore]
        await super().send_packed_command(command, check_health)


class AsyncSentinelSSLConnection(AsyncSentinelConnection, redis.asyncio.SSLConnection):
    pass


def _no_primary(sentinels: list[Any], service: str,
                error: type[redis.ConnectionError]) -> redis.ConnectionError:
    where = ", ".join(
        f"{c.connection_pool.connection_kwargs.get('host')}:"
        f"{c.connection_pool.connection_kwargs.get('port')}" for c in sentinels
    )
    return error(
        f"no sentinel ({where}) names a primary for {service!r}: they are unreachable, "
        "do not monitor that service name, or see its primary down (a failover may be "
        "in progress)"
    )


class Sentinel(redis.sentinel.Sentinel):
    """redis-py's ``Sentinel`` with a short error when no primary is found (redis-py's
    message holds the full description of every sentinel client)."""

    def discover_master(self, service_name: str) -> tuple[str, int]:
        try:
            address: tuple[str, int] = super().discover_master(  # type: ignore[no-untyped-call, unused-ignore]
                service_name)
        except redis.sentinel.MasterNotFoundError as exc:
            raise _no_primary(self.sentinels, service_name, type(exc)) from exc
        return address


class AsyncSentinel(redis.asyncio.sentinel.Sentinel):
    async def discover_master(self, service_name: str) -> tuple[str, int]:
        try:
            address: tuple[str, int] = await super().discover_master(service_name)
        except redis.asyncio.sentinel.MasterNotFoundError as exc:
            raise _no_primary(self.sentinels, service_name, type(exc)) from exc
        return address


#: Whether ``BlockingConnectionPool.disconnect`` can leave the connections in use alone
#: (redis-py 7.0 and later).
_BLOCKING_DISCONNECT_CHOOSES = "inuse_connections" in inspect.signature(
    redis.BlockingConnectionPool.disconnect).parameters


class BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    """A sentinel-managed pool whose callers wait for a free connection, as with
    ``redis.BlockingConnectionPool``, instead of failing when all are in use."""

    def disconnect(self, inuse_connections: bool = True) -> None:
        """Close every connection, or only the idle ones.

        When the sentinels name a new primary, redis-py's sentinel pool closes its idle
        connections with ``disconnect(inuse_connections=False)``, which
        ``BlockingConnectionPool`` takes only from redis-py 7.0 (before, the first
        connection of every client failed with a ``TypeError``). There the idle
        connections are the ones waiting in its queue, ``pool``.
        """
        if _BLOCKING_DISCONNECT_CHOOSES:
            super().disconnect(inuse_connections=inuse_connections)
        elif inuse_connections:
            super().disconnect()
        else:
            waiting: Any = getattr(getattr(self, "pool", None), "queue", ())
            for connection in list(waiting):
                if connection is not None:  # None: a place for a connection not made yet
                    connection.disconnect()
