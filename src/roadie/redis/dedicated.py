"""A processor's own Redis connection, with a short path for every command."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import threading
import weakref
from collections.abc import Callable
from typing import Any

import redis

from roadie.log import log

#: Commands up to this size are written with the GIL held (``_gil_send``).
GIL_SEND_MAX = 16384


def _gil_send() -> Callable[[int, bytes, int, int], int] | None:
    """libc's ``send(2)`` called through ``ctypes.PyDLL``, which keeps the GIL.

    ``socket.sendall`` lets the GIL go for the system call. With other threads
    waiting for it (ten processors running one-call jobs), one of them takes it
    and the writer waits to get it back: a hand-off per command that costs more
    than the few µs a short non-blocking write takes (one-call jobs at ``-c 10``:
    20-45 µs of CPU less per job, 20-30 % more jobs per second;
    ``docs/performance.md``). None where libc or ``MSG_DONTWAIT`` is not there.
    """
    if not hasattr(socket, "MSG_DONTWAIT"):
        return None
    try:
        send = ctypes.PyDLL(None).send
    except (OSError, AttributeError, TypeError):
        return None
    send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    send.restype = ctypes.c_ssize_t
    return send


_SEND = _gil_send()
_SEND_FLAGS = socket.MSG_DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0)


#: What the short path calls on redis-py's connection (docs/internals.md, "redis-py
#: internals"), besides the client's ``parse_response`` and ``connection``.
_CONNECTION_METHODS = ("send_command", "send_packed_command", "pack_command", "check_health",
                       "read_response", "disconnect")


def short_path_usable(client: redis.Redis) -> bool:
    """Whether ``client``'s redis-py has what the short command path calls (else the
    client takes redis-py's own path, as with ``short_command_path`` off)."""
    conn = getattr(client, "connection", None)
    return conn is not None and callable(getattr(client, "parse_response", None)) and all(
        callable(getattr(conn, name, None)) for name in _CONNECTION_METHODS)


def gil_send_usable(client: redis.Redis) -> bool:
    """Whether the write holding the GIL can work for ``client``: libc's send is there
    and redis-py keeps the connection's socket in ``_sock`` (the socket itself is
    looked at per command: a TLS one is written by redis-py)."""
    return _SEND is not None and hasattr(getattr(client, "connection", None), "_sock")


_FELL_BACK: set[str] = set()


def _fall_back(speedup: str, instead: str) -> None:
    """Say once per process, at debug, that ``speedup`` cannot work on this redis-py."""
    if speedup not in _FELL_BACK:
        _FELL_BACK.add(speedup)
        log.debug("%s: redis-py %s lacks what it needs; %s instead", speedup,
                  redis.__version__, instead)


#: Every DedicatedRedis of this process, for ``_disown_after_fork``.
_INSTANCES: weakref.WeakSet[DedicatedRedis] = weakref.WeakSet()


def _disown_after_fork() -> None:
    """In a forked child: close its copies of the parent's sockets (without shutting
    them down, which would cut the parent's connections too; redis-py's ``disconnect``
    skips that in another pid). A command in the child then opens a connection of its
    own, instead of writing into the parent's conversation with Redis."""
    for client in list(_INSTANCES):
        conn: Any = getattr(client, "connection", None)
        if conn is not None:
            # A half-built connection fails here: nothing of the parent's to keep then.
            with contextlib.suppress(Exception):
                conn.disconnect()


os.register_at_fork(after_in_child=_disown_after_fork)


class DedicatedRedis(redis.Redis):
    """A redis-py client on one connection of its own (``single_connection_client``)
    whose commands go straight to that connection.

    redis-py 8 spends about 10 µs of CPU per command around the round trip (retry
    closures, timing for its observability hooks, checks for features roadie does not
    use): a quarter of a command's cost, paid by every fetch and by every Redis call
    of a job through ``roadie.redis_client()``. This client keeps what matters of that
    path: the connection's lock (a job may hand the client to another thread), one
    immediate retry on a broken connection (as roadie configures redis-py: a stale
    connection after a Redis restart or a failover is replaced), none after a timeout
    (the command may have run), the connection's own handling of errors (it
    disconnects on any error in the middle of a reply), the parser's error classes and
    the response callbacks. Anything unusual goes through redis-py's own path.
    """

    def __init__(self, connection_pool: redis.ConnectionPool, *, short_path: bool = True,
                 gil_send: bool = True) -> None:
        super().__init__(connection_pool=connection_pool, single_connection_client=True)
        #: Speed switches (``roadie.speedups``): the short command path, and writing
        #: short commands with the GIL held; each also off where this redis-py lacks
        #: what it needs (``short_path_usable``, ``gil_send_usable``).
        self._short_path = short_path and short_path_usable(self)
        if short_path and not self._short_path:
            _fall_back("short_command_path", "redis-py's own path")
        self._gil_send = gil_send and self._short_path and gil_send_usable(self)
        if gil_send and self._short_path and _SEND is not None and not self._gil_send:
            _fall_back("gil_send", "socket.sendall")
        # redis-py's own lock for this connection when it has one (its re-authentication
        # takes it too), else one of ours.
        self._command_lock: Any = getattr(self, "single_connection_lock", None) or (
            threading.RLock())
        _INSTANCES.add(self)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        # redis-py's methods are untyped: go through Any. No short path, no connection.
        conn: Any = self.connection if self._short_path else None
        name = args[0] if args else ""
        if conn is None or (isinstance(name, str) and name.upper().startswith("HIMPORT")):
            parent: Any = super()
            return parent.execute_command(*args, **options)
        with self._command_lock:
            try:
                return self._round_trip(conn, name, args, options)
            except redis.ConnectionError:
                conn.disconnect()  # a broken connection: once more, on a new one
            except redis.TimeoutError:
                conn.disconnect()
                raise  # the command may have run: no retry
            try:
                return self._round_trip(conn, name, args, options)
            except (redis.ConnectionError, redis.TimeoutError):
                conn.disconnect()
                raise

    def _round_trip(self, conn: Any, name: Any, args: tuple[Any, ...],
                    options: dict[str, Any]) -> Any:
        me: Any = self
        sock = conn._sock if self._gil_send else None
        send = _SEND
        if send is None or type(sock) is not socket.socket:  # not connected yet, TLS, or off
            conn.send_command(*args, **options)
            return me.parse_response(conn, name, **options)
        if options.get("check_health", True):
            conn.check_health()
        packed = conn.pack_command(*args)
        data = packed[0] if len(packed) == 1 and type(packed[0]) is bytes else b"".join(packed)
        sent = send(sock.fileno(), data, len(data), _SEND_FLAGS) if len(data) <= GIL_SEND_MAX \
            else 0
        if sent != len(data):
            # A full socket buffer, a long command or a broken connection: redis-py
            # writes the rest (or reports the error, and drops the connection).
            conn.send_packed_command([data[max(sent, 0):]], check_health=False)
        return me.parse_response(conn, name, **options)
