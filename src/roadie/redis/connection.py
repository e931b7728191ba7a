"""Redis connections built from a ``Config``.

``embedded://<dir>`` URLs start (or attach to) roadie's embedded redis-server in
``<dir>``; ``redis+sentinel://`` and ``rediss+sentinel://`` URLs find the primary
through Redis Sentinel (see docs/connections.md); every other URL goes to redis-py
as given, after a check of its TLS options.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.asyncio.sentinel
import redis.connection
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from roadie.config import Config
from roadie.errors import ConfigError
from roadie.log import log
from roadie.redis.sentinel import (
    AsyncSentinel,
    AsyncSentinelConnection,
    AsyncSentinelSSLConnection,
    BlockingSentinelPool,
    Sentinel,
    SentinelConnection,
    SentinelSSLConnection,
)

_DRIVER: dict[str, Any] = {}
try:
    from redis.driver_info import DriverInfo
except ImportError:  # redis-py < 7.2 reads its version once, at import
    pass
else:
    # Without it redis-py 8 looks its own version up in the package metadata for every
    # connection it makes (about 0.7 ms each: 100 processors spent 150 ms starting).
    try:
        _DRIVER = {"driver_info": DriverInfo(name="redis-py", lib_version=redis.__version__)}
    except (TypeError, ValueError) as exc:  # a DriverInfo of another shape: do without
        log.debug("redis-py's DriverInfo is not as roadie knows it (%s): not passed", exc)

MIN_REDIS_VERSION = (6, 2, 0)
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")

# redis-py annotates replies as decoded str; roadie reads raw bytes (payloads are
# removed by exact value), so the client is typed loosely at this one boundary.
Redis: TypeAlias = Any
AsyncRedis: TypeAlias = Any


class FailoverError(redis.ResponseError):
    """Redis answered that its primary is changing or cannot take writes right now.

    ``UNBLOCKED`` (a blocking command cut short because the server became a replica),
    ``MASTERDOWN`` (a replica lost its primary) and ``NOREPLICAS`` (fewer replicas
    than ``min-replicas-to-write``). redis-py reports them as plain ``ResponseError``;
    roadie parses them into this class so that its loops wait them out like an outage
    (see ``roadie.server.outage.TRANSIENT``), as they do ``READONLY``.
    """


def script_refusal(exc: redis.ResponseError) -> redis.ResponseError:
    """``exc``, or the refusal it reports from inside a script: Redis 6.2 words a write
    refused for memory (``-OOM``) or by the ACL (``-NOPERM``) there as a script error,
    which redis-py raises as a plain ``ResponseError``; Redis 7 replies with the code."""
    if isinstance(exc, (redis.exceptions.OutOfMemoryError,
                        redis.exceptions.NoPermissionError)):
        return exc
    text = str(exc)
    if "-OOM " in text:
        return redis.exceptions.OutOfMemoryError(text)
    if "-NOPERM " in text or "user executing the script can't" in text:
        return redis.exceptions.NoPermissionError(text)
    return exc


#: Error prefixes (the first word of a Redis error reply) that mean "fail over / wait".
FAILOVER_ERRORS = ("UNBLOCKED", "MASTERDOWN", "NOREPLICAS")

_FAILOVER_CLASSES: dict[str, type[Exception]] = dict.fromkeys(FAILOVER_ERRORS, FailoverError)


def _with_failover_errors(base: type[Any]) -> type[Any]:
    """redis-py's reply parser ``base``, which also knows ``FAILOVER_ERRORS``; ``base``
    itself if it keeps no ``EXCEPTION_CLASSES`` table (those replies stay plain
    ``ResponseError``s then, rather than roadie failing to import)."""
    known = getattr(base, "EXCEPTION_CLASSES", None)
    if not isinstance(known, dict):
        log.debug("redis-py's parser %s has no EXCEPTION_CLASSES: failover replies are "
                  "not told apart", base.__name__)
        return base
    return type(
        f"Roadie{base.__name__}", (base,),
        {"EXCEPTION_CLASSES": {**known, **_FAILOVER_CLASSES}},
    )


_SYNC_PARSER = _with_failover_errors(redis.connection.DefaultParser)
#: redis-py's async reply parser with ``FAILOVER_ERRORS``; ``roadie.redis.loop`` maps
#: error replies with its ``parse_error``.
ASYNC_PARSER = _with_failover_errors(redis.asyncio.connection.DefaultParser)

#: TLS options accepted in the URL's query (``rediss://...?ssl_ca_certs=/path``).
TLS_PARAMS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_ca_path",
              "ssl_check_hostname", "ssl_password", "ssl_min_version")
_TLS_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_ca_path")
_CERT_REQS = ("required", "optional", "none")
#: Query parameters of a sentinel URL that set how roadie talks to the sentinels.
SENTINEL_PARAMS = ("sentinel_username", "sentinel_password", "sentinel_ssl")
_SENTINEL_OK = (
    *TLS_PARAMS, *SENTINEL_PARAMS, "db", "socket_timeout", "socket_connect_timeout",
    "socket_keepalive", "client_name", "username", "password", "protocol",
)


def resolve_url(url: str) -> str:
    """Turn an ``embedded://`` URL into the URL of the running embedded server."""
    if url.startswith("embedded:"):
        from roadie.embedded import EmbeddedRedis  # only needed for embedded URLs

        return EmbeddedRedis.from_url(url).start()
    return url


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


@dataclass(frozen=True)
class SentinelURL:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    tls: bool
    #: Connection options for the primary (db, username, password, ssl_*...).
    options: dict[str, Any] = field(default_factory=dict)
    #: Connection options for the sentinels themselves (auth, TLS).
    sentinel_options: dict[str, Any] = field(default_factory=dict)


_SENTINEL_FORM = (
    "redis+sentinel://[[user]:password@]host1:port1,host2:port2/<service_name>[/db]"
    "[?sentinel_password=...], or rediss+sentinel://... for TLS"
)


def parse_sentinel_url(url: str) -> SentinelURL:
    """Parse a sentinel URL; ``ConfigError`` that says what is wrong, if it is."""
    def bad(why: str) -> ConfigError:
        return ConfigError(f"invalid Redis URL {redact(url)!r}: {why}. Expected {_SENTINEL_FORM}")

    scheme, _, rest = url.partition("://")
    tls = scheme.lower() == "rediss+sentinel"
    rest = rest.partition("?")[0]
    netloc, _, path = rest.partition("/")
    creds, _, hosts = netloc.rpartition("@")
    options: dict[str, Any] = {}
    if creds:
        user, has_password, password = creds.partition(":")
        if not has_password:
            # As in redis-py, "secret@host" is a password (the default user's).
            user, password = "", user
        if user:
            options["username"] = unquote(user)
        if password:
            options["password"] = unquote(password)
    sentinels = []
    for raw in hosts.split(","):
        item = raw.strip()
        if not item:
            continue
        if item.startswith("["):  # [::1]:26379
            host, _, port_text = item[1:].partition("]")
            port_text = port_text.removeprefix(":")
        else:
            host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        if not host:
            raise bad(f"sentinel address {item!r} has no host")
        try:
            port = int(port_text) if port_text else DEFAULT_SENTINEL_PORT
        except ValueError:
            raise bad(f"sentinel address {item!r} has an invalid port") from None
        sentinels.append((unquote(host), port))
    if not sentinels:
        raise bad("no sentinel addresses")
    parts = [unquote(p) for p in path.split("/") if p]
    if not parts:
        raise bad("no service name (the name the sentinels monitor, as in "
                  "'sentinel monitor <service_name> ...')")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise bad(f"the path must be /<service_name>[/db], got {'/' + path!r}")
    service = parts[0]
    if len(parts) == 2:
        options["db"] = int(parts[1])

    params = _query(url)
    unknown = sorted(set(params) - set(_SENTINEL_OK))
    if unknown:
        raise bad(f"unknown option(s) {', '.join(unknown)}; supported: {', '.join(_SENTINEL_OK)}")
    _check_tls(url, tls, params)
    sentinel_options: dict[str, Any] = {}
    for name, value in params.items():
        if name.startswith("sentinel_"):
            continue
        parser: Any = redis.connection.URL_QUERY_ARGUMENT_PARSERS.get(name)
        try:
            options[name] = parser(value) if parser else value
        except (TypeError, ValueError):
            raise bad(f"invalid value {value!r} for {name}") from None
    if "sentinel_username" in params:
        sentinel_options["username"] = params["sentinel_username"]
    if "sentinel_password" in params:
        sentinel_options["password"] = params["sentinel_password"]
    sentinel_tls = tls
    if "sentinel_ssl" in params:
        if not tls and params["sentinel_ssl"].lower() in ("1", "true", "yes", "on"):
            raise bad("sentinel_ssl needs rediss+sentinel://")
        sentinel_tls = tls and params["sentinel_ssl"].lower() not in ("0", "false", "no", "off")
    if sentinel_tls:
        sentinel_options["ssl"] = True
        sentinel_options.update({k: v for k, v in options.items() if k.startswith("ssl_")})
    return SentinelURL(tuple(sentinels), service, tls, options, sentinel_options)


def _query(url: str) -> dict[str, str]:
    query = url.partition("?")[2]
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigError(
            f"invalid Redis URL {redact(url)!r}: its query ({redact('?' + query)!r}) is not "
            "name=value pairs joined by &"
        ) from None
    return {k: v[-1] for k, v in parsed.items()}


def _check_tls(url: str, tls: bool, params: dict[str, str]) -> None:
    """Clear errors for TLS options that redis-py would only reject at connect time."""
    given = [name for name in params if name.startswith("ssl_")]
    if given and not tls:
        scheme = url.split("://", 1)[0]
        raise ConfigError(
            f"the Redis URL {redact(url)!r} sets {', '.join(sorted(given))} but its scheme "
            f"{scheme}:// does not use TLS; use rediss://"
            f"{'' if scheme.lower() == 'redis' else ' (or rediss+sentinel://)'} for TLS"
        )
    for name in given:
        if name not in TLS_PARAMS:
            raise ConfigError(
                f"unknown TLS option {name!r} in the Redis URL {redact(url)!r}; "
                f"supported: {', '.join(TLS_PARAMS)}"
            )
    for name in _TLS_FILES:
        if name in params and not os.path.exists(params[name]):
            raise ConfigError(
                f"{name} in the Redis URL names {params[name]!r}, which does not exist; "
                "give the path of a PEM file (readable by this process)"
            )
    reqs = params.get("ssl_cert_reqs")
    if reqs is not None and reqs.lower() not in _CERT_REQS:
        raise ConfigError(
            f"ssl_cert_reqs in the Redis URL must be one of {', '.join(_CERT_REQS)}, got {reqs!r}"
        )


def connect(
    config: Config, *, max_connections: int | None = None, blocking: bool = False,
    **kwargs: Any,
) -> Redis:
    """A redis-py client for ``config.redis_url`` (raw bytes, not decoded).

    ``blocking`` makes threads wait for a free connection instead of failing
    when all ``max_connections`` are in use (what a process with N threads wants).
    With a sentinel URL the client asks the sentinels for the primary whenever it
    opens a connection, and drops a connection to a primary that was demoted.
    """
    url = resolve_url(config.redis_url)
    options = _options(config, Retry, url)
    if max_connections is not None:
        options["max_connections"] = max_connections
    options.update(kwargs)
    if is_sentinel_url(url):
        parsed = parse_sentinel_url(url)
        sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
            parsed.sentinels, sentinel_kwargs=_sentinel_kwargs(config, parsed, Retry),
        )
        pool_class: type[Any] = (
            BlockingSentinelPool if blocking else redis.sentinel.SentinelConnectionPool
        )
        pool_options = {
            **parsed.options, **options, "is_master": True,
            "connection_class": SentinelSSLConnection if parsed.tls else SentinelConnection,
        }
        if blocking:
            pool_options["timeout"] = 30
        pool = pool_class(parsed.service, sentinel, **pool_options)
        return redis.Redis.from_pool(pool)
    _check_tls(url, url.lower().startswith("rediss:"), _query(url))
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
    options = _options(config, AsyncRetry, url, parser=ASYNC_PARSER)
    options.update(kwargs)
    if is_sentinel_url(url):
        parsed = parse_sentinel_url(url)
        sentinel = AsyncSentinel(  # type: ignore[no-untyped-call, unused-ignore]
            parsed.sentinels, sentinel_kwargs=_sentinel_kwargs(config, parsed, AsyncRetry),
        )
        pool = redis.asyncio.sentinel.SentinelConnectionPool(  # type: ignore[no-untyped-call, unused-ignore]
            parsed.service, sentinel,
            **{**parsed.options, **options, "is_master": True, "connection_class": (
                AsyncSentinelSSLConnection if parsed.tls else AsyncSentinelConnection)},
        )
        return redis.asyncio.Redis.from_pool(pool)
    _check_tls(url, url.lower().startswith("rediss:"), _query(url))
    try:
        return redis.asyncio.Redis.from_url(url, **options)
    except ValueError as exc:
        raise _invalid_url(url, exc) from None


def _sentinel_kwargs(
    config: Config, parsed: SentinelURL, retry_cls: type[Retry] | type[AsyncRetry],
) -> dict[str, Any]:
    return {
        "socket_timeout": config.socket_timeout_s,
        "socket_connect_timeout": config.connect_timeout_s,
        # Each lookup tries every sentinel in turn: that is the retry.
        "retry": retry_cls(NoBackoff(), 0),
        **parsed.sentinel_options,
    }


def _options(
    config: Config, retry_cls: type[Retry] | type[AsyncRetry], url: str,
    parser: type[Any] = _SYNC_PARSER,
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": config.socket_timeout_s,
        "socket_connect_timeout": config.connect_timeout_s,
        "decode_responses": False,
        "health_check_interval": 0,
        "retry_on_timeout": False,
        # redis-py 8 retries 10 times with growing waits by default, which hides an
        # outage for a minute. One immediate retry replaces a connection that went
        # stale (a Redis restart, or a primary demoted by a failover); past that,
        # roadie's loops handle the outage. Only on a broken connection: after a
        # timeout the command may have run.
        "retry": retry_cls(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        **_DRIVER,
    }
    if _query_value(url, "protocol") not in ("3",):
        # With RESP3 redis-py picks its parser itself; keep its default there.
        options["parser_class"] = parser
    return options


def _query_value(url: str, name: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get(name) if "?" in url else None
    return values[-1] if values else None


def _invalid_url(url: str, exc: ValueError) -> ConfigError:
    return ConfigError(
        f"invalid Redis URL {redact(url)!r}: {exc}. Expected redis://[[user]:password@]"
        "host[:port][/db], rediss://... for TLS, unix:///path/to/socket, "
        f"{_SENTINEL_FORM}, or embedded://<dir> for roadie's embedded development server"
    )


def pool_connection(pool: Any) -> Any:
    """A connection of redis-py's ``pool`` for the caller alone, until it gives it back
    with ``pool.release``."""
    try:
        return pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name (which it ignores)
        return pool.get_connection("PING")


async def pool_connection_async(pool: Any) -> Any:
    """``pool_connection`` for a ``redis.asyncio`` pool."""
    try:
        return await pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name (which it ignores)
        return await pool.get_connection("PING")


def sentinel_primary(client: Redis) -> tuple[str, str, int] | None:
    """``(service, host, port)`` of the primary the sentinels name now, for a client
    made from a sentinel URL; None for any other client."""
    pool = getattr(client, "connection_pool", None)
    if not isinstance(pool, redis.sentinel.SentinelConnectionPool):
        return None
    host, port = pool.get_master_address()  # type: ignore[no-untyped-call, unused-ignore]
    return (str(pool.service_name), str(host), int(port))


def redact(url: str) -> str:
    """The URL with any password replaced, fit for logs and error messages: the one
    before ``@`` and every query parameter whose name contains ``password``."""
    if "://" not in url and not url.startswith("?"):
        return url
    base, q, query = url.partition("?")
    if "@" in base and "://" in base:
        scheme, rest = base.split("://", 1)
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0] if ":" in creds else ""
        if creds:
            base = f"{scheme}://{user}:***@{host}"
    if q:
        items = []
        for item in query.split("&"):
            name, eq, _ = item.partition("=")
            items.append(f"{name}=***" if eq and "password" in name.lower() else item)
        query = "&".join(items)
    return f"{base}{q}{query}"


def server_version(info: dict[str, Any]) -> tuple[int, int, int]:
    raw = str(info.get("redis_version", "0.0.0"))
    parts = [int(p) if p.isdigit() else 0 for p in raw.split(".")[:3]]
    while len(parts) < 3:
        parts.append(0)
    return (parts[0], parts[1], parts[2])
