"""The current client: the one ``perform_async``, ``roadie.push`` and
``roadie.redis_client()`` use when not given one.

It holds one process-wide default (set by ``roadie.configure``), lets a block use
another one and then puts back the previous, even "none yet" (``using``: the test
modes), keeps each thread's own connection on the current client's Redis
(``thread_redis``, ``own_thread_redis``: behind ``roadie.redis_client()``), which a ``roadie run``
processor replaces by its own idle connection while its job runs
(``lend_thread_client``). Only this module reads or writes that state.

It sits below ``client.py``: it never builds a ``Client`` (``roadie.configure`` and
``get_client`` do, and then set it here), so it names the class for types only.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from roadie.config import Config
from roadie.errors import NotInFakeMode
from roadie.payload import Payload
from roadie.redis.connection import Redis, connect
from roadie.redis.dedicated import DedicatedRedis

if TYPE_CHECKING:
    from roadie.client import Client

#: ``using``'s client as given: a ``Client``, a subclass, or None.
AnyClient = TypeVar("AnyClient", bound="Client | None")

_default_client: Client | None = None
_default_lock = threading.Lock()
# This thread's own connection ("redis") and the client it was made for ("owner").
_thread_local = threading.local()


def configured() -> Client | None:
    """The default client if one is set; None otherwise (nothing is configured)."""
    return _default_client


def set_default(client: Client) -> Client:
    """Make ``client`` the default client (what ``roadie.configure`` does)."""
    global _default_client
    with _default_lock:
        _default_client = client
    return client


@contextlib.contextmanager
def using(client: AnyClient) -> Iterator[AnyClient]:
    """Make ``client`` the default client for the block, then restore the previous
    one (even none: the next push then configures from the environment again).
    ``using(None)``: no default client in the block, until a push configures one."""
    global _default_client
    with _default_lock:
        previous = _default_client
        _default_client = client
    try:
        yield client
    finally:
        with _default_lock:
            _default_client = previous


@runtime_checkable
class KeepsJobs(Protocol):
    """A client that keeps its pushes in memory rather than writing them
    (``roadie.testing.FakeClient``): ``WelcomeEmail.jobs`` reads them through this."""

    def jobs(self, job: str) -> list[Payload]: ...


def kept_jobs(job_name: str) -> list[Payload]:
    """The live list of the jobs named ``job_name`` that the current client keeps;
    ``NotInFakeMode`` when it keeps none (it writes them to Redis)."""
    client = _default_client
    if not isinstance(client, KeepsJobs):
        raise NotInFakeMode(
            "pushed jobs are only kept in fake mode: use `with roadie.testing.fake():` "
            "or the roadie_fake pytest fixture"
        )
    return client.jobs(job_name)


def thread_redis() -> Redis | None:
    """This thread's connection on the default client's Redis (made by an earlier
    ``own_thread_redis`` or lent by its processor); None when it has none yet, or
    only one on a previous default client. A job may call it per command: one lookup."""
    mine = _thread_local.__dict__
    client = _default_client
    if client is not None and mine.get("owner") is client:
        redis: Redis = mine["redis"]
        return redis
    return None


def own_thread_redis(client: Client) -> Redis:
    """A new connection of this thread on ``client``'s Redis, which ``thread_redis``
    returns from now on while ``client`` is the default."""
    redis = DedicatedRedis(connect(client.config).connection_pool)
    _thread_local.__dict__.update(redis=redis, owner=client)
    return redis


def lend_thread_client(redis: Redis, config: Config) -> None:
    """Make ``redis`` (a processor's own connection, idle while its job runs) what
    ``redis_client()`` returns in this thread, if the default client is on the same
    Redis with the same timeouts.

    A process with 100 processors then opens 100 connections fewer, and its jobs'
    first Redis call does not pay for a connection.
    """
    client = _default_client
    if client is not None and _connection_settings(client.config) == _connection_settings(config):
        _thread_local.__dict__.update(redis=redis, owner=client)


def _connection_settings(config: Config) -> tuple[str, float, float]:
    return config.redis_url, config.socket_timeout_s, config.connect_timeout_s
