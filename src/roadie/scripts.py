"""Roadie's Lua scripts, loaded once, one typed method each.

Each script lives in ``lua/<name>.lua`` with its KEYS/ARGV contract in a header.
redis-py's ``Script`` runs EVALSHA and reloads on NOSCRIPT (after a Redis restart).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from importlib import resources
from typing import Any, cast

from redis.commands.core import Script
from redis.exceptions import NoScriptError, ResponseError

from roadie.redis.connection import Redis, script_refusal


@cache
def source(name: str) -> str:
    return resources.files("roadie").joinpath(f"lua/{name}.lua").read_text()


class Scripts:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._fetch = redis.register_script(source("fetch"))
        self._enqueue_due = redis.register_script(source("enqueue_due"))
        self._recover = redis.register_script(source("recover"))
        self._requeue = redis.register_script(source("requeue"))
        self._periodic_tick = redis.register_script(source("periodic_tick"))
        self._fail = redis.register_script(source("fail"))
        self._register = redis.register_script(source("register"))

    @staticmethod
    def _run(script: Script, keys: Sequence[str], args: Sequence[Any], client: Any) -> Any:
        try:
            return script(keys=list(keys), args=list(args), client=client)
        except NoScriptError:
            raise
        except ResponseError as exc:
            raise script_refusal(exc) from None

    def fetch(
        self,
        inflight: str,
        queue_keys: Sequence[str],
        count: int = 1,
        client: Any = None,
        acks: Sequence[bytes] = (),
        share: int = 0,
    ) -> list[tuple[str, bytes]]:
        """Move up to ``count`` jobs into ``inflight``; returns (queue key, raw) pairs.

        ``acks``: finished jobs' raws, removed from ``inflight`` first. ``share``: take
        more than one job only from a queue holding at least ``share`` jobs per job
        taken (see ``fetch.lua``).
        """
        # The hot path: EVALSHA straight away (redis-py's Script.__call__ costs a few
        # µs more per call); the script is loaded on NOSCRIPT (a restarted Redis).
        c = client if client is not None else self.redis
        try:
            flat = c.evalsha(self._fetch.sha, 1 + len(queue_keys), inflight, *queue_keys,
                             count, share, *acks)
        except NoScriptError:
            flat = self._run(self._fetch, [inflight, *queue_keys], [count, share, *acks], c)
        except ResponseError as exc:
            raise script_refusal(exc) from None
        return self._pairs(queue_keys, flat)

    async def fetch_async(
        self,
        execute: Callable[..., Awaitable[Any]],
        inflight: str,
        queue_keys: Sequence[str],
        count: int = 1,
        acks: Sequence[bytes] = (),
        share: int = 0,
    ) -> list[tuple[str, bytes]]:
        """``fetch`` on the event loop; ``execute(*command)`` sends a command there and
        returns its reply (``roadie.redis.loop``, or a ``redis.asyncio`` client's
        ``execute_command``)."""
        argv = (1 + len(queue_keys), inflight, *queue_keys, count, share, *acks)
        try:
            flat = await execute("EVALSHA", self._fetch.sha, *argv)
        except NoScriptError:  # a restarted Redis: load it, once
            await execute("SCRIPT", "LOAD", source("fetch"))
            flat = await execute("EVALSHA", self._fetch.sha, *argv)
        except ResponseError as exc:
            raise script_refusal(exc) from None
        return self._pairs(queue_keys, flat)

    @staticmethod
    def _pairs(queue_keys: Sequence[str], flat: Any) -> list[tuple[str, bytes]]:
        return [
            (queue_keys[int(flat[i]) - 2], cast(bytes, flat[i + 1]))
            for i in range(0, len(flat), 2)
        ]

    def enqueue_due(
        self,
        zset: str,
        queues_key: str,
        moves: Sequence[tuple[bytes, bytes | None, str, str]],
        client: Any = None,
    ) -> int:
        """Move ``(old member, new raw or None, queue key, queue name)`` entries."""
        queue_keys: list[str] = []
        index: dict[str, int] = {}
        args: list[Any] = []
        for old, new, qkey, qname in moves:
            if qkey not in index:
                index[qkey] = len(queue_keys) + 3
                queue_keys.append(qkey)
            args += [old, new if new is not None else b"", index[qkey], qname]
        return int(self._run(self._enqueue_due, [zset, queues_key, *queue_keys], args, client))

    def recover(
        self,
        inflight: str,
        alive: str,
        dead: str,
        now: float,
        dead_cutoff: float,
        dead_max: int,
        entries: Sequence[tuple[bytes, str, bytes, str | None]],
        client: Any = None,
    ) -> int:
        """Entries are ``(old raw, 'q' or 'd', new raw, queue key or None)``.

        Returns -1 when the owner turned out to be alive (nothing touched).
        """
        queue_keys: list[str] = []
        index: dict[str, int] = {}
        args: list[Any] = [repr(now), repr(dead_cutoff), dead_max]
        for old, action, new, qkey in entries:
            idx = 0
            if qkey is not None:
                if qkey not in index:
                    index[qkey] = len(queue_keys) + 4
                    queue_keys.append(qkey)
                idx = index[qkey]
            args += [old, action, new, idx]
        keys = [inflight, alive, dead, *queue_keys]
        return int(self._run(self._recover, keys, args, client))

    def requeue(
        self, inflight: str, entries: Sequence[tuple[bytes, str]], client: Any = None
    ) -> int:
        """Push ``(raw, queue key)`` back to the front of their queues if still in flight."""
        queue_keys: list[str] = []
        index: dict[str, int] = {}
        args: list[Any] = []
        for raw, qkey in entries:
            if qkey not in index:
                index[qkey] = len(queue_keys) + 2
                queue_keys.append(qkey)
            args += [raw, index[qkey]]
        return int(self._run(self._requeue, [inflight, *queue_keys], args, client))

    def fail(
        self,
        inflight: str,
        target: str,
        old: bytes,
        new: bytes,
        score: float,
        *,
        trim_below: float | None = None,
        keep: int = 0,
        from_sorted_set: bool = False,
        client: Any = None,
    ) -> bool:
        """Move a failed job from ``inflight`` (or, ``from_sorted_set``, from that
        sorted set) into the sorted set ``target`` (retry or dead) as ``new``; for the
        dead set, ``trim_below`` and ``keep`` trim it. False if the job was no longer
        there (nothing written)."""
        trim = "" if trim_below is None else repr(trim_below)
        args = [old, new, repr(score), trim, keep, "z" if from_sorted_set else ""]
        return int(self._run(self._fail, [inflight, target], args, client)) == 1

    def register(self, alive: str, owners: str, identity: str, ttl_ms: int,
                 client: Any = None) -> None:
        """Mark a starting process alive and list it among the in-flight owners."""
        self._run(self._register, [alive, owners], [identity, ttl_ms], client)

    def periodic_tick(
        self,
        last_key: str,
        queues_key: str,
        queue_key: str,
        name: str,
        tick_at: int,
        raw: bytes | None,
        queue: str,
        client: Any = None,
    ) -> bool:
        """Take tick ``tick_at`` of schedule ``name`` and push ``raw`` (None: dropped
        by middleware); False if that tick, or a later one, was already taken."""
        args = [name, tick_at, raw if raw is not None else b"", queue]
        keys = [last_key, queues_key, queue_key]
        return int(self._run(self._periodic_tick, keys, args, client)) == 1
