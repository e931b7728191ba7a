"""Queues: ``queue:<name>`` lists and the ``queues`` set.

Jobs are pushed on the left and taken from the right, so index 0 of a queue is
its newest job and index -1 (the tail) the next to run. Latency is measured on
the tail, as Sidekiq does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from roadie.api.base import ApiBase, as_bytes, epoch, parse_object, text
from roadie.api.records import JobRecord
from roadie.config import Config
from roadie.keys import Keys
from roadie.redis.connection import Redis


class Queue(ApiBase):
    """One queue, by name (without the ``queue:`` prefix)."""

    def __init__(
        self,
        name: str = "default",
        config: Config | None = None,
        *,
        redis: Redis | None = None,
        keys: Keys | None = None,
    ) -> None:
        super().__init__(config, redis=redis, keys=keys)
        self.name = name
        self.key = self.keys.queue(name)

    def __repr__(self) -> str:
        return f"<Queue {self.name}>"

    def size(self) -> int:
        return int(self.redis.llen(self.key))

    def latency(self, now: float | None = None) -> float:
        """Seconds the next job to run has waited (0.0 for an empty queue).

        Read from the tail entry's ``enqueued_at`` (float seconds from roadie and
        Sidekiq 6/7, integer milliseconds from Sidekiq 8), else its ``created_at``.
        """
        return tail_latency(self.redis.lindex(self.key, -1), now)

    def entries(self, start: int = 0, count: int = 25) -> list[JobRecord]:
        """``count`` jobs from index ``start`` (0 = newest, the last to run)."""
        if count <= 0:
            return []
        raws = self.redis.lrange(self.key, start, start + count - 1)
        return [JobRecord.from_raw(raw, self.name) for raw in raws]

    def __iter__(self) -> Iterator[JobRecord]:
        """Every job, newest first, read page by page."""
        start = 0
        page = 100
        while True:
            batch = self.entries(start, page)
            yield from batch
            if len(batch) < page:
                return
            start += page

    def find_job(self, jid: str) -> JobRecord | None:
        for record in self:
            if record.jid == jid:
                return record
        return None

    def delete(self, raw: bytes | str) -> bool:
        """Remove one job by its exact raw bytes; False if it was no longer there."""
        return int(self.redis.lrem(self.key, 1, as_bytes(raw))) == 1

    def clear(self) -> None:
        """Drop every job and forget the queue name (one MULTI, as Sidekiq)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.unlink(self.key)
        pipe.srem(self.keys.queues, self.name)
        pipe.execute()


def tail_latency(raw: bytes | str | None, now: float | None = None) -> float:
    payload = parse_object(raw)
    if payload is None:
        return 0.0
    at = epoch(payload.get("enqueued_at")) or epoch(payload.get("created_at"))
    if at is None:
        return 0.0
    return max(0.0, (time.time() if now is None else now) - at)


def queues(
    config: Config | None = None, *, redis: Redis | None = None, keys: Keys | None = None
) -> list[Queue]:
    """Every queue named in ``queues``, sorted by name."""
    base = ApiBase(config, redis=redis, keys=keys)
    names = sorted(text(n) for n in base.redis.smembers(base.keys.queues))
    return [Queue(n, base.config, **base._share()) for n in names]


def queue_sizes(
    config: Config | None = None, *, redis: Redis | None = None, keys: Keys | None = None
) -> dict[str, int]:
    """Name -> size of every queue named in ``queues``, in one round trip."""
    base = ApiBase(config, redis=redis, keys=keys)
    names = sorted(text(n) for n in base.redis.smembers(base.keys.queues))
    pipe = base.redis.pipeline(transaction=False)
    for name in names:
        pipe.llen(base.keys.queue(name))
    return dict(zip(names, (int(n) for n in pipe.execute()), strict=True))
