"""Redis connections built from a ``Config``.

``embedded://<dir>`` URLs start (or attach to) roadie's embedded redis-server in
``<dir>``; every other URL goes to redis-py as given.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from roadie.config import Config
from roadie.errors import ConfigError

MIN_REDIS_VERSION = (6, 2, 0)

# redis-py annotates replies as decoded str; roadie reads raw bytes (payloads are
# removed by exact value), so the client is typed loosely at this one boundary.
Redis: TypeAlias = Any
AsyncRedis: TypeAlias = Any


def resolve_url(url: str) -> str:
    """Turn an ``embedded://`` URL into the URL of the running embedded server."""
    if url.startswith("embedded:"):
        from roadie.embedded import EmbeddedRedis  # only needed for embedded URLs

        return EmbeddedRedis.from_url(url).start()
    return url


def connect(
    config: Config, *, max_connections: int | None = None, blocking: bool = False,
    **kwargs: Any,
) -> Redis:
    """A redis-py client for ``config.redis_url`` (raw bytes, not decoded).

    ``blocking`` makes threads wait for a free connection instead of failing
    when all ``max_connections`` are in use (what a process with N threads wants).
    """
    url = resolve_url(config.redis_url)
    options = _options(config, Retry)
    if max_connections is not None:
        options["max_connections"] = max_connections
    options.update(kwargs)
    try:
        if blocking:
            pool = redis.BlockingConnectionPool.from_url(url, timeout=30, **options)
            return redis.Redis(connection_pool=pool)
        return redis.Redis.from_url(url, **options)
    except ValueError as exc:
        raise _invalid_url(url, exc) from None


async def connect_async(config: Config, **kwargs: Any) -> AsyncRedis:
    """A ``redis.asyncio`` client for ``config.redis_url``, with ``connect``'s options.
    Bound to the running event loop, as every ``redis.asyncio`` client is."""
    # Starting an embedded server runs a subprocess: keep it off the event loop.
    url = await asyncio.to_thread(resolve_url, config.redis_url)
    options = _options(config, AsyncRetry)
    options.update(kwargs)
    try:
        return redis.asyncio.Redis.from_url(url, **options)
    except ValueError as exc:
        raise _invalid_url(url, exc) from None


def _options(config: Config, retry_cls: type[Retry] | type[AsyncRetry]) -> dict[str, Any]:
    return {
        "socket_timeout": config.socket_timeout_s,
        "socket_connect_timeout": config.connect_timeout_s,
        "decode_responses": False,
        "health_check_interval": 0,
        "retry_on_timeout": False,
        # redis-py 8 retries 10 times with growing waits by default, which hides an
        # outage for a minute. One immediate retry replaces a connection that went
        # stale (a Redis restart); past that, roadie's loops handle the outage.
        # Only on a broken connection: after a timeout the command may have run.
        "retry": retry_cls(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    }


def _invalid_url(url: str, exc: ValueError) -> ConfigError:
    return ConfigError(
        f"invalid Redis URL {redact(url)!r}: {exc}. Expected redis://[[user]:password@]"
        "host[:port][/db], rediss://... for TLS, unix:///path/to/socket, or "
        "embedded://<dir> for roadie's embedded development server"
    )


def redact(url: str) -> str:
    """The URL with any password replaced, fit for logs and error messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user}:***@{host}" if creds else url


def server_version(info: dict[str, Any]) -> tuple[int, int, int]:
    raw = str(info.get("redis_version", "0.0.0"))
    parts = [int(p) if p.isdigit() else 0 for p in raw.split(".")[:3]]
    while len(parts) < 3:
        parts.append(0)
    return (parts[0], parts[1], parts[2])
