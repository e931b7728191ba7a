"""Pushing jobs from asyncio code without blocking the event loop.

::

    from roadie import aio

    async def signup(...):
        user = await save_user(...)
        await aio.perform_async(WelcomeEmail, user.id)
        await aio.perform_in(ProfileReminder, timedelta(days=1), user.id)
        await aio.perform_async(WelcomeEmail.set(queue="critical"), user.id)
        await aio.push("ResizeImage", args=[user.id], queue="ruby")

The payload is built exactly as the blocking client builds it (``Client.prepare_push``:
defaults, jid, JSON check, client middleware) and written with the same commands
(``Client.add_writes``) in one MULTI, over a ``redis.asyncio`` connection.

A ``redis.asyncio`` connection belongs to the event loop that opened it, so there is one
``AsyncClient`` per running loop, built on the blocking default client
(``roadie.configure`` sets both). ``await aio.close()`` closes the running loop's one;
the FastAPI/Starlette lifespan (``roadie.contrib.fastapi``) does that at shutdown.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Never

from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

from roadie import client as client_mod
from roadie import payload as pl
from roadie.client import Client, Prepared
from roadie.job import Job, JobFunction, JobSetter
from roadie.pushcheck import to_epoch, to_seconds
from roadie.pushwrite import ChunkFailed, single_push_error, write_chunk_async
from roadie.redis.connection import AsyncRedis, connect_async

#: What the ``perform_*`` functions accept: a Job class, an ``@roadie.job`` function,
#: or ``Job.set(...)``.
JobLike = type[Job] | JobFunction[Any] | JobSetter


def _setter(job: JobLike) -> JobSetter:
    if isinstance(job, JobSetter):
        return job
    return job.set()


class AsyncClient:
    """Pushes jobs over ``redis.asyncio``; payloads come from a blocking ``Client``.

    Use it from the event loop it was first used on; ``aclose()`` when done.
    """

    def __init__(self, client: Client | None = None, *, redis: AsyncRedis | None = None) -> None:
        #: Holds the config, keys and middleware; its own Redis connection is not used.
        self.client = client or client_mod.get_client()
        self._redis = redis
        self._lock = asyncio.Lock()

    async def redis(self) -> AsyncRedis:
        """The ``redis.asyncio`` client, connected on first use."""
        if self._redis is None:
            async with self._lock:
                if self._redis is None:
                    # No command retry, as in Client.redis: a push whose reply was
                    # lost must not be sent twice.
                    self._redis = await connect_async(
                        self.client.config, retry=AsyncRetry(NoBackoff(), 0)
                    )
        return self._redis

    async def aclose(self) -> None:
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()

    # --- writing -----------------------------------------------------------
    async def push(self, item: Mapping[str, Any]) -> str | None:
        """Push one job; returns its jid, or None if client middleware dropped it.
        ``PushError`` as ``Client.push`` raises it when Redis did not take it."""
        prepared = self.client.prepare_push(item)
        if prepared is None:
            return None
        jid = str(prepared[0]["jid"])
        try:
            await self._write([prepared])
        except ChunkFailed as failed:
            raise single_push_error(failed, pl.display_class(prepared[0]), jid,
                                    self.client.config) from failed.cause
        return jid

    async def push_bulk(
        self, items: Iterable[Mapping[str, Any]], *, batch_size: int = 1000
    ) -> list[str | None]:
        """Push many jobs, one MULTI per batch; nothing is written if any argument is
        bad. ``PushError`` says which jids were written when Redis fails midway."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        prepared = self.client.prepare_bulk(items)
        ready = [p for p in prepared if p is not None]
        for start in range(0, len(ready), batch_size):
            try:
                await self._write(ready[start : start + batch_size])
            except ChunkFailed as failed:
                raise client_mod.bulk_failure(
                    failed, ready, start, batch_size, self.client.config
                ) from failed.cause
        return [str(p[0]["jid"]) if p is not None else None for p in prepared]

    async def _write(self, jobs: Sequence[Prepared]) -> None:
        if type(self.client)._write is not Client._write:
            # A client with a write of its own writes no Redis (roadie.testing's fake
            # and inline clients keep the jobs or run them): let it do its write.
            self.client._write(jobs)
            return
        await write_chunk_async(await self.redis(), self.client.write_commands(jobs))

    # --- the Job-style verbs -----------------------------------------------
    async def perform_async(self, job: JobLike, *args: Any, **kwargs: Never) -> str | None:
        setter = _setter(job)
        return await self.push(setter.item(args, kwargs, client=self.client))

    async def perform_in(
        self, job: JobLike, interval: float | timedelta, *args: Any, **kwargs: Never
    ) -> str | None:
        setter = _setter(job)
        at = time.time() + to_seconds(interval, f"{setter.name}.perform_in")
        return await self._push_at(setter, at, args, kwargs)

    async def perform_at(self, job: JobLike, when: datetime | float, *args: Any,
                         **kwargs: Never) -> str | None:
        setter = _setter(job)
        return await self._push_at(setter, to_epoch(when, f"{setter.name}.perform_at"),
                                   args, kwargs)

    async def _push_at(self, setter: JobSetter, at: float, args: Sequence[Any],
                       kwargs: Mapping[str, Any]) -> str | None:
        item = setter.item(args, kwargs, client=self.client)
        if at > time.time():
            item["at"] = at
        return await self.push(item)

    async def perform_bulk(
        self, job: JobLike, args_list: Iterable[Sequence[Any]], *, batch_size: int = 1000
    ) -> list[str | None]:
        items = _setter(job).bulk_items(args_list, client=self.client)
        return await self.push_bulk(items, batch_size=batch_size)


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def get_client() -> AsyncClient:
    """The running event loop's client, built on ``roadie.get_client()``.

    After ``roadie.configure(...)`` a new one is built on the new default client.
    """
    loop = asyncio.get_running_loop()
    base = client_mod.get_client()
    found = _clients.get(loop)
    if found is None or found.client is not base:
        found = _clients[loop] = AsyncClient(base)
    return found


async def close() -> None:
    """Close the running loop's client (its connections); the next push opens new ones."""
    found = _clients.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.aclose()


async def push(
    job_class: str,
    args: Sequence[Any] = (),
    *,
    queue: str | None = None,
    at: float | None = None,
    **options: Any,
) -> str | None:
    """Push a job by name: ``await aio.push("HardJob", args=[1], queue="ruby")``."""
    return await get_client().push(client_mod.named_item(job_class, args, queue, at, options))


async def perform_async(job: JobLike, *args: Any, **kwargs: Never) -> str | None:
    """``await aio.perform_async(WelcomeEmail, 42)``: ``WelcomeEmail.perform_async(42)``."""
    return await get_client().perform_async(job, *args, **kwargs)


async def perform_in(job: JobLike, interval: float | timedelta, *args: Any,
                     **kwargs: Never) -> str | None:
    return await get_client().perform_in(job, interval, *args, **kwargs)


async def perform_at(job: JobLike, when: datetime | float, *args: Any,
                     **kwargs: Never) -> str | None:
    return await get_client().perform_at(job, when, *args, **kwargs)


async def perform_bulk(
    job: JobLike, args_list: Iterable[Sequence[Any]], *, batch_size: int = 1000
) -> list[str | None]:
    return await get_client().perform_bulk(job, args_list, batch_size=batch_size)
