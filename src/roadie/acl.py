"""The Redis commands roadie sends, and a harmless test of a user's permission to.

``COMMANDS`` is the one list of them (the client, ``roadie run``, the dashboard and
``roadie check``, with the commands inside ``lua/*.lua``): docs/connections.md shows
the ACL rule ``acl_rule()`` builds from it, and the ACL tests give a user exactly it.

``missing(client, keys, queues)`` tells which of them the connected user may not run,
on the key names roadie uses. It queues each command in a MULTI that it then
DISCARDs: Redis checks a command's ACL permissions (the command, and every key it
names) when it queues it, and runs nothing of a discarded transaction. That works for
any user, on Redis 6.2 too; ``ACL DRYRUN`` needs admin rights and Redis 7.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from redis.exceptions import NoPermissionError

from roadie.keys import Keys

#: Every command roadie sends, by its ACL name (``script|load`` is SCRIPT LOAD).
COMMANDS: tuple[str, ...] = (
    "ping", "info", "select",
    "get", "set", "mget", "mset", "incrby", "exists", "expire", "pexpire", "del", "unlink",
    "bitfield",
    "lpush", "rpush", "rpop", "llen", "lindex", "lrange", "lrem", "ltrim", "lmove", "blmove",
    "hget", "hset", "hdel", "hexists", "hgetall", "hmget", "hincrby", "hlen", "hvals",
    "sadd", "srem", "smembers", "scard", "sismember",
    "zadd", "zrem", "zcard", "zrange", "zrevrange", "zscore", "zmscore", "zscan",
    "zremrangebyrank", "zremrangebyscore",
    "multi", "exec", "discard", "watch", "unwatch",
    "evalsha", "eval", "script|load", "script|exists",
)
#: Commands roadie does without: ``roadie check`` only reports less (CONFIG is
#: disabled on many managed services).
OPTIONAL_COMMANDS: tuple[str, ...] = ("config|get",)

#: A value that no probe ever writes: the transaction holding it is discarded.
_MARK = "roadie-check"
_NO_SCRIPT = "0" * 40
#: Keys named in a message; the rest are counted.
_KEYS_SHOWN = 6


def acl_rule() -> str:
    """The ACL command rules that allow roadie everything and nothing else."""
    return " ".join(["-@all", *(f"+{c}" for c in (*COMMANDS, *OPTIONAL_COMMANDS))])


@dataclass(frozen=True, slots=True)
class Probe:
    """One command as roadie sends it, on a key roadie uses it on."""

    command: str  # the ACL name, one of COMMANDS
    argv: tuple[str, ...]
    keys: tuple[str, ...] = ()


@dataclass(slots=True)
class Missing:
    """What the user may not do: commands, and keys (with a command roadie uses there)."""

    commands: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    #: Without MULTI nothing else can be tested harmlessly.
    untested: bool = False

    def __bool__(self) -> bool:
        return bool(self.commands or self.keys)

    def describe(self) -> str:
        """One sentence: what is missing and the fix."""
        parts = []
        if self.commands:
            parts.append(f"commands {', '.join(self.commands)}")
        if self.keys:
            listed = list(self.keys.items())
            shown = ", ".join(f"{key} ({cmd})" for key, cmd in listed[:_KEYS_SHOWN])
            more = len(listed) - _KEYS_SHOWN
            parts.append(f"keys {shown}" + (f" and {more} more" if more > 0 else ""))
        text = "the Redis user may not use " + "; ".join(parts)
        if self.untested:
            text += " (the other commands cannot be tested without MULTI)"
        fixes = []
        if self.commands:
            fixes.append("+" + " +".join(self.commands))
        if self.keys:
            fixes.append("~* (or ~<namespace>:* with a namespace)")
        return (f"{text}: grant {' and '.join(fixes)} in the user's ACL rule "
                "(docs/connections.md has the whole rule roadie needs)")


def sample_identity() -> str:
    """A process identity as ``roadie run`` makes them (``host:pid:hex``), the same
    in ``roadie check`` and ``roadie run``: both name the same keys."""
    return f"{socket.gethostname()}:0:{_MARK}"


def probes(keys: Keys, queues: Sequence[str], identity: str) -> list[Probe]:
    """Every command of ``COMMANDS`` that goes in a transaction, on the keys roadie
    uses it on (the main ones: a key pattern that leaves one out shows here)."""
    inflight = keys.inflight(identity)
    process = keys.process(identity)
    signals = keys.signals(identity)
    lock = keys.recover_lock(identity)
    alive = keys.alive(identity)
    now = datetime.now(UTC)
    minute = keys.metrics(now)
    histogram = keys.metrics_histogram("RoadieCheck", now)
    day = f"{now:%Y-%m-%d}"
    out = []

    def add(command: str, *argv: str, keys_at: slice = slice(1, 2)) -> None:
        out.append(Probe(command, argv, tuple(argv[keys_at])))

    for name in queues:
        queue = keys.queue(name)
        add("lmove", "LMOVE", queue, inflight, "RIGHT", "LEFT", keys_at=slice(1, 3))
        add("blmove", "BLMOVE", queue, inflight, "RIGHT", "LEFT", "1", keys_at=slice(1, 3))
        add("evalsha", "EVALSHA", _NO_SCRIPT, "2", inflight, queue, "1", "0",
            keys_at=slice(3, 5))
        add("lpush", "LPUSH", queue, _MARK)
        add("rpush", "RPUSH", queue, _MARK)
        add("llen", "LLEN", queue)
        add("lrange", "LRANGE", queue, "0", "0")
        add("lindex", "LINDEX", queue, "-1")
        add("lrem", "LREM", queue, "1", _MARK)
        add("unlink", "UNLINK", queue, keys_at=slice(1, None))
    add("lrem", "LREM", inflight, "-1", _MARK)
    add("ltrim", "LTRIM", inflight, "0", "-1")
    add("lrange", "LRANGE", inflight, "0", "0")
    add("rpop", "RPOP", signals)
    add("lpush", "LPUSH", signals, _MARK)
    add("del", "DEL", lock, keys_at=slice(1, None))
    add("set", "SET", alive, "1", "PX", "1000")
    add("pexpire", "PEXPIRE", alive, "1000")
    add("set", "SET", lock, _MARK, "NX", "PX", "1000")
    add("set", "SET", keys.process_cleanup, "1", "NX", "EX", "60")
    add("get", "GET", alive)
    add("exists", "EXISTS", alive, process, keys_at=slice(1, None))
    add("incrby", "INCRBY", keys.stat("processed"), "0")
    add("incrby", "INCRBY", keys.stat_daily("failed", day), "0")
    add("expire", "EXPIRE", keys.stat_daily("failed", day), "60")
    add("mget", "MGET", keys.stat("processed"), keys.stat("failed"), keys_at=slice(1, None))
    add("mset", "MSET", keys.stat("processed"), "0", keys_at=slice(1, 2))
    add("hset", "HSET", process, "beat", "0")
    add("expire", "EXPIRE", process, "60")
    add("hgetall", "HGETALL", process)
    add("hmget", "HMGET", process, "beat")
    add("hexists", "HEXISTS", process, "info")
    add("hset", "HSET", keys.work(identity), _MARK, _MARK)
    add("hset", "HSET", keys.workers(identity), _MARK, _MARK)
    add("hdel", "HDEL", keys.work(identity), _MARK)
    add("hvals", "HVALS", keys.work(identity))
    add("get", "GET", keys.died(identity))
    add("hset", "HSET", keys.periodic, _MARK, _MARK)
    add("hlen", "HLEN", keys.periodic)
    add("hget", "HGET", keys.periodic_last, _MARK)
    add("hincrby", "HINCRBY", minute, f"{_MARK}|p", "0")
    add("bitfield", "BITFIELD", histogram, "OVERFLOW", "SAT", "INCRBY", "u16", "#0", "0")
    add("sadd", "SADD", keys.processes, identity)
    add("srem", "SREM", keys.processes, identity)
    add("smembers", "SMEMBERS", keys.processes)
    add("scard", "SCARD", keys.processes)
    add("sadd", "SADD", keys.queues, _MARK)
    add("sadd", "SADD", keys.inflight_owners, identity)
    add("sismember", "SISMEMBER", keys.paused, _MARK)
    add("smembers", "SMEMBERS", keys.paused)
    for sorted_set in (keys.schedule, keys.retry, keys.dead):
        add("zadd", "ZADD", sorted_set, "0", _MARK)
        add("zrem", "ZREM", sorted_set, _MARK)
        add("zcard", "ZCARD", sorted_set)
        add("zrange", "ZRANGE", sorted_set, "0", "0")
    add("zrevrange", "ZREVRANGE", keys.dead, "0", "0")
    add("zscore", "ZSCORE", keys.retry, _MARK)
    add("zmscore", "ZMSCORE", keys.retry, _MARK)
    add("zscan", "ZSCAN", keys.dead, "0", "COUNT", "1")
    add("zremrangebyrank", "ZREMRANGEBYRANK", keys.dead, "0", "-10001")
    add("zremrangebyscore", "ZREMRANGEBYSCORE", keys.dead, "-inf", "(0")
    add("evalsha", "EVALSHA", _NO_SCRIPT, "2", keys.schedule, keys.queue("default"),
        keys_at=slice(3, 5))
    add("eval", "EVAL", "return 1", "1", keys.schedule, keys_at=slice(3, 4))
    add("script|load", "SCRIPT", "LOAD", "return 1", keys_at=slice(0, 0))
    add("script|exists", "SCRIPT", "EXISTS", _NO_SCRIPT, keys_at=slice(0, 0))
    return out


def _denied(reply: Any) -> str | None:
    """'command' or 'key' when ``reply`` is an ACL refusal, else None."""
    if isinstance(reply, NoPermissionError) or (
        isinstance(reply, redis.ResponseError) and str(reply).startswith("NOPERM")
    ):
        return "key" if "key" in str(reply).lower() else "command"
    return None


def _send(connection: Any, commands: Sequence[tuple[str, ...]]) -> list[Any]:
    """Send ``commands`` in one round trip; their replies, errors included."""
    connection.send_packed_command(connection.pack_commands(commands))
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(connection.read_response())
        except redis.ResponseError as exc:
            replies.append(exc)
    return replies


def missing(client: redis.Redis, keys: Keys, queues: Sequence[str],
            identity: str | None = None) -> Missing:
    """The commands of ``COMMANDS`` and the keys the connected user may not use.

    Writes nothing: the direct commands change nothing (EXEC and DISCARD without a
    MULTI are errors once permitted); the others go only into an open transaction,
    which is discarded (and its connection closed, which discards it too).
    """
    identity = identity or sample_identity()
    result = Missing()
    db = str(client.connection_pool.connection_kwargs.get("db", 0) or 0)
    direct = [("ping", ("PING",)), ("info", ("INFO", "server")), ("select", ("SELECT", db)),
              ("exec", ("EXEC",)), ("discard", ("DISCARD",)),
              ("watch", ("WATCH", keys.retry)), ("unwatch", ("UNWATCH",)),
              ("multi", ("MULTI",))]
    queued = probes(keys, queues, identity)
    pool = client.connection_pool
    try:
        connection: Any = pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name (which it ignores)
        connection = pool.get_connection("PING")
    try:
        replies = _send(connection, [argv for _, argv in direct])
        for (command, argv), reply in zip(direct, replies, strict=True):
            kind = _denied(reply)
            if kind == "key":  # WATCH's
                result.keys.setdefault(argv[1], argv[0])
            elif kind == "command":
                result.commands.append(command)
        if "multi" in result.commands:
            # Outside a transaction the probes would run: test nothing more.
            result.untested = True
            return result
        replies = _send(connection, [p.argv for p in queued])
    finally:
        # Closing the connection ends the transaction, discarded, whatever its
        # state (a refused DISCARD, an error half-way); the pool reconnects it.
        connection.disconnect()
        pool.release(connection)
    allowed: set[str] = set()
    refused: list[Probe] = []
    for probe, reply in zip(queued, replies, strict=True):
        kind = _denied(reply)
        if kind == "command":
            if probe.command not in result.commands:
                result.commands.append(probe.command)
        elif kind == "key":
            refused.append(probe)
        else:
            allowed.update(probe.keys)
    for probe in refused:
        # A probe naming two keys: the one that another probe could use is not it.
        suspects = [k for k in probe.keys if k not in allowed] or list(probe.keys)
        for key in suspects:
            result.keys.setdefault(key, probe.argv[0])
    result.commands.sort(key=COMMANDS.index)  # the same list, whatever the probes' order
    return result
