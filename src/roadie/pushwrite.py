"""Writing one chunk of pushed jobs (one MULTI), and the account of a failed write.

A push sends ``MULTI``, the writes (``SADD queues``, ``LPUSH`` per queue, ``ZADD
schedule``) and ``EXEC`` in one packet, on a connection taken from the pool first.
Where it fails tells what Redis holds:

* taking the connection failed (refused, no route, wrong password, connect timeout):
  nothing was sent, nothing is written;
* Redis answered and refused the transaction (``EXECABORT``: a write refused when it
  was queued, for OOM, NOPERM, READONLY; ``NOAUTH``): nothing is written;
* Redis refused ``MULTI`` itself (an ACL user without it) and so ran each write on
  its own: the replies say which writes ran, hence which jobs are written;
* the connection broke or timed out after sending: the reply is lost, the chunk is
  written entirely or not at all and there is no way to tell (*unconfirmed*).

The commands are written on the connection directly rather than through redis-py's
pipeline: a pipeline raises only the first error and hands the connection back to the
pool, while here every reply is read and a connection left in a doubtful state
(a MULTI that Redis did not close) is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis as redis_lib
from redis.exceptions import NoPermissionError

from roadie.config import Config
from roadie.errors import PushError
from roadie.redis.connection import pool_connection, pool_connection_async, redact

#: One write of a chunk: the command's arguments and the jids it writes.
Command = tuple[tuple[Any, ...], list[str]]


class ChunkFailed(Exception):
    """A chunk's write failed; which of its jids Redis holds, and why (``cause``)."""

    def __init__(self, cause: BaseException, *, sent: bool, written: list[str],
                 unconfirmed: list[str], not_written: list[str]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        #: False when nothing reached Redis (the connection could not be made).
        self.sent = sent
        self.written = written
        self.unconfirmed = unconfirmed
        self.not_written = not_written


def _jids(commands: Sequence[Command]) -> list[str]:
    return [jid for _, jids in commands for jid in jids]


def _packets(commands: Sequence[Command]) -> list[tuple[Any, ...]]:
    return [("MULTI",), *(args for args, _ in commands), ("EXEC",)]


def write_chunk(redis: Any, commands: Sequence[Command]) -> None:
    """Run ``commands`` in one MULTI on ``redis`` (redis-py); ``ChunkFailed`` if any failed."""
    pool = redis.connection_pool
    try:
        conn = pool_connection(pool)
    except redis_lib.RedisError as exc:
        raise ChunkFailed(exc, sent=False, written=[], unconfirmed=[],
                          not_written=_jids(commands)) from exc
    failure: ChunkFailed | None = None
    try:
        conn.send_packed_command(conn.pack_commands(_packets(commands)))
        replies: list[Any] = []
        for _ in range(len(commands) + 2):
            try:
                replies.append(conn.read_response())
            except redis_lib.ResponseError as exc:
                replies.append(exc)
        failure = judge(replies, commands)
    except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
        failure = _lost(exc, commands)
    except BaseException:
        conn.disconnect()  # a reply half read: the connection is in no known state
        raise
    finally:
        if failure is not None:
            # A refused EXEC can leave the connection inside MULTI: never reuse it.
            conn.disconnect()
        pool.release(conn)
    if failure is not None:
        raise failure from failure.cause


async def write_chunk_async(redis: Any, commands: Sequence[Command]) -> None:
    """``write_chunk`` on a ``redis.asyncio`` client."""
    pool = redis.connection_pool
    try:
        conn = await pool_connection_async(pool)
    except redis_lib.RedisError as exc:
        raise ChunkFailed(exc, sent=False, written=[], unconfirmed=[],
                          not_written=_jids(commands)) from exc
    failure: ChunkFailed | None = None
    try:
        await conn.send_packed_command(conn.pack_commands(_packets(commands)))
        replies: list[Any] = []
        for _ in range(len(commands) + 2):
            try:
                replies.append(await conn.read_response())
            except redis_lib.ResponseError as exc:
                replies.append(exc)
        failure = judge(replies, commands)
    except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
        failure = _lost(exc, commands)
    except BaseException:  # a cancelled task included: the reply is half read
        await conn.disconnect()
        raise
    finally:
        if failure is not None:
            await conn.disconnect()
        await pool.release(conn)
    if failure is not None:
        raise failure from failure.cause


def _lost(exc: BaseException, commands: Sequence[Command]) -> ChunkFailed:
    if isinstance(exc, redis_lib.AuthenticationError):
        # NOAUTH: Redis refuses every command of a connection that did not log in.
        return ChunkFailed(exc, sent=True, written=[], unconfirmed=[],
                           not_written=_jids(commands))
    return ChunkFailed(exc, sent=True, written=[], unconfirmed=_jids(commands),
                       not_written=[])


def judge(replies: Sequence[Any], commands: Sequence[Command]) -> ChunkFailed | None:
    """What the replies to ``MULTI``, ``commands`` and ``EXEC`` say was written:
    None when every job is written."""
    multi, queued, executed = replies[0], replies[1:-1], replies[-1]
    if not isinstance(multi, Exception):
        if isinstance(executed, Exception) or executed is None:
            # EXECABORT (a write was refused when queued), or EXEC itself refused:
            # Redis discarded the transaction.
            refusals = [r for r in queued if isinstance(r, Exception)]
            cause = refusals[0] if refusals else executed or redis_lib.ResponseError(
                "EXEC returned no reply")
            return ChunkFailed(cause, sent=True, written=[], unconfirmed=[],
                               not_written=_jids(commands))
        results: Sequence[Any] = executed
    else:
        # Without MULTI, each write ran on its own: its own reply says whether it did.
        results = queued
    written: list[str] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    for (_, jids), result in zip(commands, results, strict=True):
        if isinstance(result, Exception):
            errors.append(result)
            refused += jids
        else:
            written += jids
    if not refused:
        return None
    return ChunkFailed(errors[0], sent=True, written=written, unconfirmed=[],
                       not_written=refused)


def _reason(exc: BaseException, config: Config, *, sent: bool) -> str:
    """What happened, true for the cause, with the fix."""
    url = redact(config.redis_url)
    if isinstance(exc, redis_lib.AuthenticationError):
        return (f"Redis at {url} refused the login ({exc}); check the user and password "
                "in redis_url")
    if isinstance(exc, redis_lib.OutOfMemoryError):
        return (f"Redis at {url} is full: it is over its maxmemory and refuses writes "
                f"({exc}). Raise maxmemory (CONFIG SET maxmemory, and in redis.conf), or "
                "free memory: let `roadie run` work the queues down, or clear the dead set")
    if isinstance(exc, NoPermissionError):
        return (f"the Redis user of redis_url may not run a command a push needs ({exc}); "
                "a push runs MULTI, SADD, LPUSH, ZADD and EXEC: grant them (see "
                "docs/connections.md, \"The smallest ACL rule roadie works with\")")
    if isinstance(exc, redis_lib.ReadOnlyError):
        return (f"Redis at {url} is a read-only replica ({exc}); point redis_url at the "
                "primary, or at the sentinels (redis+sentinel://)")
    if isinstance(exc, redis_lib.TimeoutError):
        if not sent:
            return (f"Redis at {url} did not accept a connection within "
                    f"{config.connect_timeout_s:g} s (connect_timeout_s)")
        return (f"Redis at {url} did not answer within {config.socket_timeout_s:g} s "
                "(socket_timeout_s)")
    if isinstance(exc, redis_lib.ConnectionError):
        if not sent:
            return f"could not connect to Redis at {url} ({exc})"
        return f"the connection to Redis at {url} was lost before its reply ({exc})"
    return f"Redis at {url} refused the write ({type(exc).__name__}: {exc})"


def single_push_error(failure: ChunkFailed, job: str, jid: str, config: Config) -> PushError:
    """The ``PushError`` of ``push``: one job, one chunk."""
    reason = _reason(failure.cause, config, sent=failure.sent)
    if failure.unconfirmed:
        outcome = ("The job may or may not have been written (.unconfirmed): there is no "
                   "way to tell from here, and pushing it again may run it twice")
    else:
        outcome = "Nothing was written: push it again once that is fixed"
    return PushError(f"could not push {job} (jid {jid}): {reason}. {outcome}",
                     written=failure.written, unconfirmed=failure.unconfirmed,
                     not_written=failure.not_written)


def bulk_push_error(failure: ChunkFailed, *, before: list[str], after: list[str],
                    chunk: int, chunks: int, config: Config) -> PushError:
    """The ``PushError`` of ``push_bulk``: the chunks ``before`` the failed one were
    written, those ``after`` it were never sent."""
    written = before + failure.written
    not_written = failure.not_written + after
    total = len(written) + len(failure.unconfirmed) + len(not_written)
    reason = _reason(failure.cause, config, sent=failure.sent)
    unconfirmed = (
        f"{len(failure.unconfirmed)} are unconfirmed (written entirely or not at all, no "
        "way to tell from here: .unconfirmed), " if failure.unconfirmed else ""
    )
    return PushError(
        f"bulk push interrupted at batch {chunk} of {chunks}: {reason}. "
        f"{len(written)} of {total} jobs were written (.written), {unconfirmed}"
        f"{len(not_written)} were not written (.not_written: push them again once that "
        "is fixed)",
        written=written, unconfirmed=list(failure.unconfirmed), not_written=not_written,
    )
