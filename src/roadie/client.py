"""Pushing jobs: normalize -> JSON check -> client middleware -> one atomic write.

``roadie.push("HardJob", args=[1, 2], queue="critical")`` pushes by name, for jobs
that live in another codebase (a Ruby app's Sidekiq, another Python service).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from redis.backoff import NoBackoff
from redis.retry import Retry

from roadie import current
from roadie import payload as pl
from roadie.config import Config
from roadie.errors import PushError
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.middleware import hooks as default_hooks
from roadie.payload import Payload
from roadie.pushwrite import ChunkFailed, Command, bulk_push_error, single_push_error, write_chunk
from roadie.redis.connection import Redis, connect

#: Options every payload carries unless the job or caller says otherwise.
DEFAULTS: dict[str, Any] = {"retry": True, "queue": "default"}

# Keys only meaningful in the request, never stored (as in Sidekiq).
_TRANSIENT = ("at", "pool", "client_class")

#: A job ready to write: its payload and, for a scheduled job, when it is due.
Prepared = tuple[Payload, float | None]


class Client:
    """Pushes jobs into one Redis. Thread-safe; share one per process."""

    #: True for a client that runs the jobs in this process (``roadie.testing``'s):
    #: it may push a job class of ``__main__``, which a worker could never import.
    runs_jobs_in_process: ClassVar[bool] = False

    def __init__(
        self,
        config: Config | None = None,
        *,
        redis: Redis | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.config = config or Config()
        self.keys = Keys(self.config.namespace)
        self.hooks = hooks or default_hooks
        self._redis = redis
        self._lock = threading.Lock()

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            with self._lock:
                if self._redis is None:
                    # No retry of a command: when a connection drops after Redis
                    # ran a push (its reply lost), sending it again would write the
                    # jobs twice. A connection Redis closed meanwhile (a restart) is
                    # replaced by the pool when it is taken, before anything is sent.
                    self._redis = connect(self.config, retry=Retry(NoBackoff(), 0))
        return self._redis

    # --- building payloads -------------------------------------------------
    def normalize(self, item: Mapping[str, Any]) -> tuple[Payload, float | None]:
        """Defaults under the item, jid and created_at; returns (payload, at)."""
        cls = item.get("class")
        if not isinstance(cls, str) or not cls:
            raise ValueError(f"a job needs a 'class' name string, got {cls!r}")
        args = item.get("args", [])
        if not isinstance(args, (list, tuple)):
            raise TypeError(f"{cls}: args must be a list, got {type(args).__name__}")
        queue = item.get("queue", DEFAULTS["queue"])
        if not isinstance(queue, str) or not queue:
            raise ValueError(f"{cls}: queue must be a non-empty string, got {queue!r}")
        at = item.get("at")
        if at is not None and (isinstance(at, bool) or not isinstance(at, (int, float))):
            raise TypeError(f"{cls}: 'at' must be epoch seconds, got {at!r}")
        if at is not None:
            at = pl.check_schedule_time(at, cls)
        payload: Payload = dict(DEFAULTS)
        for k, v in item.items():
            if k not in _TRANSIENT:
                payload[k] = v
        payload["args"] = list(args)
        payload["class"] = cls
        if not payload.get("jid"):
            payload["jid"] = pl.new_jid()
        if "created_at" not in payload:
            payload["created_at"] = pl.now()
        return payload, at

    def prepare_push(self, item: Mapping[str, Any]) -> Prepared | None:
        """Normalize, check, run client middleware: the ``(payload, at)`` that ``push``
        writes, or None if middleware dropped the job. Shared with ``roadie.aio``."""
        payload, at = self.normalize(item)
        pl.check_args(payload["args"], pl.display_class(payload))
        if not self.hooks.client_middleware:
            return payload, at
        result = self.hooks.run_client(payload["class"], payload, payload["queue"])
        if result is None:
            return None
        # Middleware may have changed args: check again.
        pl.check_args(result["args"], pl.display_class(result))
        return result, at

    def prepare(self, item: Mapping[str, Any]) -> Payload | None:
        """What ``push`` would write for ``item`` (normalized, checked, client
        middleware run, ``enqueued_at`` now), without writing it: for callers that
        must write the job in their own atomic step (the admin API's "retry now").
        Returns None if client middleware dropped the job; ``at`` is ignored."""
        if "at" in item:
            # Ignored, so not checked either: a stored entry carrying a hostile "at"
            # can still be retried by hand.
            item = {k: v for k, v in item.items() if k != "at"}
        prepared = self.prepare_push(item)
        if prepared is None:
            return None
        payload = prepared[0]
        payload["enqueued_at"] = pl.now()
        return payload

    # --- writing -----------------------------------------------------------
    def push(self, item: Mapping[str, Any]) -> str | None:
        """Push one job; returns its jid, or None if client middleware dropped it.

        ``PushError`` when Redis did not take it: it says whether the job was written,
        is unconfirmed, or was not written, and why."""
        prepared = self.prepare_push(item)
        if prepared is None:
            return None
        payload, at = prepared
        jid = str(payload["jid"])
        try:
            self._write([(payload, at)])
        except ChunkFailed as failed:
            raise single_push_error(failed, pl.display_class(payload), jid,
                                    self.config) from failed.cause
        return jid

    def push_bulk(
        self, items: Iterable[Mapping[str, Any]], *, batch_size: int = 1000
    ) -> list[str | None]:
        """Push many jobs; one MULTI per batch. Returns jids aligned with ``items``.

        Every argument of every job is checked before anything is written, so a
        bad argument raises and writes nothing. Each batch is all or nothing, but
        when Redis fails after some batches were written (gone, full, refusing),
        ``PushError`` says which jids were written, which are unconfirmed, and which
        were not.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        prepared = self.prepare_bulk(items)
        ready = [p for p in prepared if p is not None]
        for start in range(0, len(ready), batch_size):
            try:
                self._write(ready[start : start + batch_size])
            except ChunkFailed as failed:
                raise bulk_failure(failed, ready, start, batch_size, self.config) \
                    from failed.cause
        return [str(p[0]["jid"]) if p is not None else None for p in prepared]

    def prepare_bulk(self, items: Iterable[Mapping[str, Any]]) -> list[Prepared | None]:
        """``prepare_push`` for each item, with one ``created_at`` for the whole batch."""
        # One created_at for the whole batch, as Sidekiq does.
        created_at = pl.now()
        return [
            self.prepare_push(item if "created_at" in item else {**item, "created_at": created_at})
            for item in items
        ]

    def _write(self, jobs: Sequence[Prepared]) -> None:
        # MULTI: a push never half-succeeds (all of a batch is written, or none).
        # ChunkFailed says what Redis holds when it fails.
        write_chunk(self.redis, self.write_commands(jobs))

    def write_commands(self, jobs: Sequence[Prepared]) -> list[Command]:
        """The commands that write ``jobs`` (to run inside one MULTI), each with the
        jids it writes."""
        now = pl.now()
        by_queue: dict[str, list[bytes]] = {}
        queue_jids: dict[str, list[str]] = {}
        scored: list[Any] = []
        scheduled_jids: list[str] = []
        for payload, at in jobs:
            if at is not None:
                scored += (at, pl.encode({k: v for k, v in payload.items() if k != "enqueued_at"}))
                scheduled_jids.append(str(payload["jid"]))
            else:
                payload["enqueued_at"] = now
                queue = payload["queue"]
                by_queue.setdefault(queue, []).append(pl.encode(payload))
                queue_jids.setdefault(queue, []).append(str(payload["jid"]))
        commands: list[Command] = []
        if by_queue:
            commands.append((("SADD", self.keys.queues, *by_queue), []))
            for queue, raws in by_queue.items():
                commands.append((("LPUSH", self.keys.queue(queue), *raws), queue_jids[queue]))
        if scored:
            commands.append((("ZADD", self.keys.schedule, *scored), scheduled_jids))
        return commands

    def add_writes(self, pipe: Any, jobs: Sequence[Prepared]) -> None:
        """Queue on ``pipe`` (a MULTI pipeline, redis-py's or ``redis.asyncio``'s) the
        commands that write ``jobs``; the caller executes it."""
        for args, _ in self.write_commands(jobs):
            pipe.execute_command(*args)


def bulk_failure(failed: ChunkFailed, ready: Sequence[Prepared], start: int,
                 batch_size: int, config: Config) -> PushError:
    """The ``PushError`` of a bulk push whose batch at ``start`` failed (shared with
    ``roadie.aio``)."""
    jids = [str(p[0]["jid"]) for p in ready]
    return bulk_push_error(
        failed, before=jids[:start], after=jids[start + batch_size :],
        chunk=start // batch_size + 1, chunks=-(-len(jids) // batch_size), config=config,
    )

def push(
    job_class: str,
    args: Sequence[Any] = (),
    *,
    queue: str | None = None,
    at: float | None = None,
    client: Client | None = None,
    **options: Any,
) -> str | None:
    """Push a job by name: ``roadie.push("HardJob", args=[1], queue="ruby")``."""
    return (client or get_client()).push(named_item(job_class, args, queue, at, options))


def named_item(
    job_class: str, args: Sequence[Any], queue: str | None, at: float | None,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """The item ``push`` (and ``roadie.aio.push``) writes for a job given by name.
    ``at`` (epoch seconds) in the past: pushed at once."""
    item: dict[str, Any] = {**options, "args": list(args), "class": job_class}
    if queue is not None:
        item["queue"] = queue
    if at is not None:
        if isinstance(at, bool) or not isinstance(at, (int, float)):
            raise TypeError(f"{job_class}: at must be epoch seconds, got {at!r}")
        at = pl.check_schedule_time(at, job_class)
        if at > time.time():
            item["at"] = at
    return item


def configure(config: Config | None = None, *, client: Client | None = None) -> Client:
    """Set the client that ``perform_async`` and ``roadie.push`` use by default."""
    if client is None:
        if config is None:
            from roadie.config import load

            config = load()
        client = Client(config)
    return current.set_default(client)


def redis_client() -> Redis:
    """A Redis client of this thread, on the default client's Redis.

    Meant for jobs that use Redis themselves: each thread gets one connection of its
    own, so many processors never wait on a connection pool's lock (with 10 threads
    a pooled redis-py client costs about 1.5 times as much CPU per command). In a
    ``roadie run`` processor it is the processor's own connection, idle while the job
    runs. Raw bytes, like every roadie client. Not for pub/sub or commands that change
    the connection's state (SELECT, CLIENT SETNAME, a MULTI left open...). Its commands
    take the short path of ``roadie.redis.dedicated.DedicatedRedis``.
    """
    redis = current.thread_redis()
    return current.own_thread_redis(get_client()) if redis is None else redis


def get_client() -> Client:
    """The default client, configured from the environment on first use."""
    client = current.configured()
    if client is not None:
        return client
    return configure()
