"""``roadie check``: is Redis running, reachable, and fit to hold jobs?

Written for someone setting roadie up for the first time: every failure is one
plain sentence that says what to do next, never a traceback.
"""

from __future__ import annotations

import socket
import ssl
import statistics
import time
from typing import Any, TextIO

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError

from roadie import acl
from roadie.config import BLOCK_TIMEOUT_S, Config
from roadie.errors import ConfigError, RedisUnavailable
from roadie.keys import Keys
from roadie.redis.connection import (
    MIN_REDIS_VERSION,
    connect,
    is_sentinel_url,
    redact,
    sentinel_primary,
    server_version,
)

PINGS = 10
#: Connections a ``roadie run`` process holds besides one per processor: the
#: heartbeat, poller, periodic scheduler, janitor, main loop, liveness pulse and the
#: event loop of async jobs.
SHARED_CONNECTIONS = 7
#: Above this share of ``maxmemory``, the check warns that Redis is nearly full.
NEARLY_FULL = 0.9
#: The socket timeout must exceed a blocking fetch's wait by this much (a round trip,
#: Redis's timer granularity), or every idle fetch times out as an outage.
FETCH_TIMEOUT_MARGIN_S = 1.0
_FIX = "start Redis or set REDIS_URL (or use embedded://.roadie/redis for development)"


def run_check(config: Config, out: TextIO) -> int:
    """Print a short report on the configured Redis; 0 if usable, 1 if not."""
    _line(out, "Redis URL", redact(config.redis_url))
    if not config.redis_url_configured:
        print(
            "  (no Redis URL was configured, so the default is used; set REDIS_URL, "
            "--redis-url or redis_url in roadie.toml)",
            file=out,
        )
    client: redis.Redis | None = None
    try:
        # No retries: a check should report the first failure, not back off for seconds.
        client = connect(config, retry=Retry(NoBackoff(), 0))
        where = _location(client)
        if config.redis_url.startswith("embedded:"):
            _line(out, "embedded server", where)
        elif is_sentinel_url(config.redis_url):
            _line(out, "sentinel primary", where)
        warnings = _report(client, config, out)
    except ConfigError as exc:
        return _fail(out, f"bad Redis URL: {exc}")
    except RedisUnavailable as exc:  # the embedded server could not be started
        return _fail(out, str(exc))
    except redis.RedisError as exc:
        return _fail(out, _explain(exc, client, config))
    except Exception as exc:  # a check must never end in a traceback
        return _fail(out, f"unexpected {type(exc).__name__}: {exc}")
    finally:
        if client is not None:
            client.close()
    if warnings is None:
        return 1  # _report said why
    note = f" ({warnings} warning{'s' if warnings != 1 else ''} above)" if warnings else ""
    print(f"OK: Redis is reachable and supported{note}", file=out)
    return 0


def _line(out: TextIO, label: str, value: object) -> None:
    print(f"{label + ':':<18}{value}", file=out)


def _report(client: redis.Redis, config: Config, out: TextIO) -> int | None:
    """Print the facts; return the number of warnings, or None if Redis is unusable."""
    warnings: list[str] = []
    client.ping()  # connection and auth problems surface here, before anything else
    missing = acl.missing(client, Keys(config.namespace), config.queue_names)
    if "info" in missing.commands:  # nothing else can be told
        _fail(out, missing.describe())
        return None
    info = client.info()
    version = server_version(info)
    shown = ".".join(map(str, version))
    needed = ".".join(map(str, MIN_REDIS_VERSION))
    name = f"Valkey {_text(info['valkey_version'])} (Redis {shown})" if (
        "valkey_version" in info
    ) else f"Redis {shown}"
    if version < MIN_REDIS_VERSION:
        _line(out, "server", f"{name} (too old)")
        _fail(out, f"{name} is too old: roadie needs Redis {needed} or newer; upgrade it")
        return None
    _line(out, "server", f"{name} (supported; roadie needs >= {needed})")
    if _text(info.get("role", "master")) != "master":
        warnings.append("this server is a read-only replica: pushing jobs will fail")

    policy = _config_get(client, "maxmemory-policy") or _text(info.get("maxmemory_policy"))
    _line(out, "maxmemory-policy", policy or "unknown (CONFIG GET refused)")
    if policy and policy != "noeviction":
        warnings.append(
            f"maxmemory-policy is {policy}: eviction silently deletes jobs; "
            "set maxmemory-policy noeviction"
        )

    aof = bool(int(info.get("aof_enabled", 0)))
    fsync = _config_get(client, "appendfsync")
    save = _config_get(client, "save")
    aof_text = f"AOF on (appendfsync {fsync or 'unknown'})" if aof else "AOF off"
    if save is None:
        rdb_text = "RDB save unknown (CONFIG GET refused)"
    else:
        rdb_text = f"RDB save {save!r}" if save.strip() else "RDB snapshots off"
    _line(out, "persistence", f"{aof_text}; {rdb_text}")
    if not aof and save is not None and not save.strip():
        warnings.append("no persistence: a Redis restart loses every queued job")

    _line(out, "latency", f"{_latency_ms(client):.3f} ms (median of {PINGS} PINGs)")
    maxmemory = int(info.get("maxmemory", 0) or 0)
    used = int(info.get("used_memory", 0) or 0)
    limit = _text(info.get("maxmemory_human")) if maxmemory else "no limit"
    used_text = _text(info.get("used_memory_human", "?"))
    _line(out, "memory used", f"{used_text} (maxmemory: {limit})")
    failures: list[str] = []
    if maxmemory and used >= maxmemory:
        failures.append(
            f"Redis is full: it uses {used_text} ({used} bytes) of maxmemory {limit} "
            f"({maxmemory} bytes), so it refuses new jobs (OOM). Raise maxmemory "
            "(CONFIG SET maxmemory, or redis.conf), free memory (delete keys you do not "
            "need, for example old dead jobs), or let roadie run drain the queues: it "
            "keeps fetching and acknowledging jobs while Redis is full, which frees memory"
        )
    elif maxmemory and used > NEARLY_FULL * maxmemory:
        warnings.append(
            f"Redis is nearly full: it uses {used_text} of maxmemory {limit} "
            f"({100 * used / maxmemory:.0f}%); once full it refuses new jobs: raise "
            "maxmemory or free memory"
        )
    maxclients = int(info.get("maxclients", 0) or 0)
    connections = connections_needed(config)
    if maxclients:
        _line(out, "clients", f"{info.get('connected_clients', '?')} connected, maxclients "
              f"{maxclients} (roadie run needs {connections})")
        if connections > maxclients:
            failures.append(too_many_connections(config, maxclients, _location(client)))
    _line(out, "permissions", "all the commands roadie needs" if not missing else "missing")
    if missing:
        failures.append(missing.describe())
    fetch_problem = fetch_timeout_problem(config)
    if fetch_problem:
        warnings.append(f"{fetch_problem} (pushing jobs works)")
    for warning in warnings:
        print(f"WARNING: {warning}", file=out)
    if failures:
        for failure in failures:
            _fail(out, failure)
        return None
    return len(warnings)


def connections_needed(config: Config) -> int:
    """Redis connections ``roadie run`` opens at start with ``config`` (jobs that
    use ``roadie.redis_client()`` pipelines can take up to one more per processor)."""
    return config.processes * (config.concurrency + SHARED_CONNECTIONS)


def too_many_connections(config: Config, maxclients: int, where: str) -> str:
    per = f"{config.concurrency} for the processors + {SHARED_CONNECTIONS} shared"
    count = f"{config.processes} processes x ({per})" if config.processes > 1 else per
    return (
        f"roadie run with {config.label('concurrency')} {config.concurrency} needs "
        f"{connections_needed(config)} Redis connections ({count}), more than Redis at "
        f"{where} accepts (maxclients {maxclients}): lower the concurrency, or raise "
        "maxclients in redis.conf (and the open files limit of redis-server, ulimit -n)"
    )


def fetch_timeout_problem(config: Config) -> str | None:
    """Why ``config.socket_timeout_s`` is too short for ``roadie run``, or None."""
    shortest_s = BLOCK_TIMEOUT_S + FETCH_TIMEOUT_MARGIN_S
    if config.socket_timeout_s >= shortest_s:
        return None
    return (
        f"socket_timeout_s must be at least {shortest_s:g} for roadie run, got "
        f"{config.socket_timeout_s:g}{config.origin('socket_timeout_s')}: an idle "
        f"processor waits {BLOCK_TIMEOUT_S:g} s for a job in one Redis command, which a "
        "shorter timeout cuts as an outage (and no dead process's jobs get recovered)"
    )


def preflight(client: redis.Redis, config: Config, where: str) -> None:
    """What ``roadie run`` checks before it starts, beyond reaching Redis: raises
    ``ConfigError`` or ``RedisUnavailable`` with one sentence."""
    problem = fetch_timeout_problem(config)
    if problem:
        raise ConfigError(problem)
    refuse_missing_permissions(client, config, where)
    info = client.info("clients")
    maxclients = int(info.get("maxclients", 0) or 0)
    if maxclients and connections_needed(config) > maxclients:
        raise RedisUnavailable(too_many_connections(config, maxclients, where))


def refuse_missing_permissions(client: redis.Redis, config: Config, where: str) -> None:
    """``RedisUnavailable`` listing the commands and keys the user may not use, if any."""
    missing = acl.missing(client, Keys(config.namespace), config.queue_names)
    if missing:
        raise RedisUnavailable(f"cannot run jobs with Redis at {where}: {missing.describe()}")


def _fail(out: TextIO, message: str) -> int:
    print(f"FAIL: {message}", file=out)
    return 1


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)


def _config_get(client: redis.Redis, name: str) -> str | None:
    """One CONFIG GET value; None where it is refused, as on many managed services."""
    try:
        reply = client.config_get(name)
    except redis.ResponseError:
        return None
    for key, value in reply.items():
        if _text(key) == name:
            return _text(value)
    return None


def _latency_ms(client: redis.Redis) -> float:
    samples = []
    for _ in range(PINGS):
        started = time.perf_counter()
        client.ping()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _location(client: redis.Redis) -> str:
    try:
        primary = sentinel_primary(client)
    except redis.RedisError:  # the check reports it
        return "none found"
    if primary is not None:
        service, host, port = primary
        return f"{host}:{port} (the primary of {service!r}, named by the sentinels)"
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix socket {kwargs['path']}"
    return f"{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}"


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _explain(exc: redis.RedisError, client: redis.Redis | None, config: Config) -> str:
    """One sentence for a Redis failure: what happened and what to do about it."""
    where = _location(client) if client is not None else redact(config.redis_url)
    causes = _causes(exc)
    if isinstance(exc, redis.AuthenticationError) or (
        isinstance(exc, redis.ResponseError) and "AUTH" in str(exc).upper()
    ):
        return (
            f"authentication failed at {where}: {exc}; check the user and password in "
            "the Redis URL (redis://user:password@host:port/db)"
        )
    if isinstance(exc, redis.TimeoutError):
        return (
            f"timed out talking to {where} (connect timeout {config.connect_timeout_s:g}s, "
            f"socket timeout {config.socket_timeout_s:g}s): the server is stalled or a "
            "firewall drops the packets"
        )
    if isinstance(exc, redis.BusyLoadingError):
        return f"Redis at {where} is still loading its data into memory; try again shortly"
    if isinstance(exc, MasterNotFoundError):
        return (
            f"{exc}; check the sentinel addresses and the "
            "service name in the URL (redis+sentinel://host:port,.../<service_name>), "
            "and that the sentinels run and agree on a primary"
        )
    if isinstance(exc, redis.ConnectionError) and (
        any(isinstance(c, ssl.SSLError) for c in causes) or "SSL" in str(exc)
    ):
        return (
            f"the TLS handshake with {where} failed: {exc}; check ssl_ca_certs (the CA "
            "that signed the server's certificate), ssl_certfile/ssl_keyfile if the "
            "server asks for a client certificate, and that the server speaks TLS on "
            "that port (rediss:// needs a TLS port)"
        )
    if isinstance(exc, redis.ConnectionError):
        if any(isinstance(c, ConnectionRefusedError) for c in causes) or (
            "refused" in str(exc).lower()
        ):
            return f"nothing listens at {where}; {_FIX}"
        if any(isinstance(c, FileNotFoundError) for c in causes):
            return f"no Redis socket at {where}; {_FIX}"
        if any(isinstance(c, socket.gaierror) for c in causes):
            return f"cannot resolve the host of {where}; check the host name in the Redis URL"
        return f"cannot connect to {where}: {exc}"
    if "DB index" in str(exc):
        return f"Redis at {where} has no such database ({exc}); check the /db number in the URL"
    return f"Redis at {where} answered with an error: {exc}"
