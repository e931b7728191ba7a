"""Totals and daily history: what a dashboard's front page shows.

The counters are Sidekiq's (``stat:processed``, ``stat:failed`` and their UTC daily
keys), written by roadie and Sidekiq processes alike, so the figures cover the
whole fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from roadie.api.base import ApiBase, text, to_int
from roadie.api.queues import Queue, tail_latency

#: Sidekiq's API allows five years of history; its dashboard shows up to 180 days.
MAX_HISTORY_DAYS = 5 * 365


@dataclass(frozen=True, slots=True)
class Summary:
    """Every total at one moment (read in two round trips)."""

    processed: int
    failed: int
    scheduled_size: int
    retry_size: int
    dead_size: int
    enqueued: int
    processes_size: int
    busy: int
    default_queue_latency: float
    #: Queue name -> size, for every queue named in ``queues``.
    queues: dict[str, int]


@dataclass(frozen=True, slots=True)
class History:
    """Daily counts, newest day first: ``{"2026-11-28": 1200, ...}``."""

    processed: dict[str, int]
    failed: dict[str, int]


class Stats(ApiBase):
    def summary(self) -> Summary:
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(k.stat("processed"))
        pipe.get(k.stat("failed"))
        pipe.zcard(k.schedule)
        pipe.zcard(k.retry)
        pipe.zcard(k.dead)
        pipe.scard(k.processes)
        pipe.lindex(k.queue("default"), -1)
        pipe.smembers(k.queues)
        pipe.smembers(k.processes)
        (processed, failed, scheduled, retry, dead, nprocs, tail, names, procs) = pipe.execute()
        queue_names = sorted(text(n) for n in names)
        identities = sorted(text(p) for p in procs)
        pipe = self.redis.pipeline(transaction=False)
        for name in queue_names:
            pipe.llen(k.queue(name))
        for ident in identities:
            pipe.hget(k.process(ident), "busy")
        replies = pipe.execute()
        sizes = dict(zip(queue_names, (int(n) for n in replies[: len(queue_names)]), strict=True))
        return Summary(
            processed=to_int(processed),
            failed=to_int(failed),
            scheduled_size=int(scheduled),
            retry_size=int(retry),
            dead_size=int(dead),
            enqueued=sum(sizes.values()),
            processes_size=int(nprocs),
            busy=sum(to_int(b) for b in replies[len(queue_names):]),
            default_queue_latency=tail_latency(tail),
            queues=sizes,
        )

    # One figure at a time (each one round trip or two).
    def processed(self) -> int:
        return to_int(self.redis.get(self.keys.stat("processed")))

    def failed(self) -> int:
        return to_int(self.redis.get(self.keys.stat("failed")))

    def scheduled_size(self) -> int:
        return int(self.redis.zcard(self.keys.schedule))

    def retry_size(self) -> int:
        return int(self.redis.zcard(self.keys.retry))

    def dead_size(self) -> int:
        return int(self.redis.zcard(self.keys.dead))

    def processes_size(self) -> int:
        """``SCARD processes``, as Sidekiq counts it (dead members not pruned)."""
        return int(self.redis.scard(self.keys.processes))

    def enqueued(self) -> int:
        return self.summary().enqueued

    def busy(self) -> int:
        """Jobs running now: the sum of every process's ``busy`` field."""
        return self.summary().busy

    def default_queue_latency(self) -> float:
        return Queue("default", self.config, **self._share()).latency()

    def history(self, days: int = 30, start: date | None = None) -> History:
        """Daily processed and failed counts for ``days`` days back from ``start``
        (default today, UTC); days without a key count 0."""
        days = max(1, min(days, MAX_HISTORY_DAYS))
        first = start or datetime.now(UTC).date()
        dates = [(first - timedelta(days=i)).isoformat() for i in range(days)]
        out: dict[str, dict[str, int]] = {}
        for name in ("processed", "failed"):
            values = self.redis.mget([self.keys.stat_daily(name, d) for d in dates])
            out[name] = {d: to_int(v) for d, v in zip(dates, values, strict=True)}
        return History(processed=out["processed"], failed=out["failed"])

    def reset(self, *names: str) -> None:
        """Set the lifetime totals (``processed``, ``failed`` or both) to zero."""
        chosen = names or ("processed", "failed")
        unknown = set(chosen) - {"processed", "failed"}
        if unknown:
            raise ValueError(f"unknown stat(s) {sorted(unknown)}; use 'processed' or 'failed'")
        self.redis.mset({self.keys.stat(n): 0 for n in chosen})
