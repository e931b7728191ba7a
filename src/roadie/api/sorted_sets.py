"""The ``schedule``, ``retry`` and ``dead`` sorted sets and actions on their entries.

Every action that changes a job's state is one atomic step:

* **retry now / add to queue**: the entry is prepared as a normal push
  (``Client.prepare``: client middleware, ``enqueued_at`` now; from the retry and
  dead sets ``retry_count`` goes down by one first, so that a manual retry does not
  use up an attempt), then ``lua/enqueue_due.lua`` removes the exact member and
  pushes the job in one step. Sidekiq pops then pushes; a crash between the two
  would lose the job, here it cannot.
* **delete**: ``ZREM`` of the exact member.
* **kill**: ``WATCH`` the set, check the member is still there, then one MULTI
  removes it and adds it to ``dead`` with the morgue's trimming
  (``roadie.retry.add_dead``); death handlers run afterwards.

Entries are identified by their raw bytes, never by a re-encoding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis as redis_lib

from roadie import payload as pl
from roadie.api.base import ApiBase, as_bytes, glob_escape
from roadie.api.records import JobRecord
from roadie.client import Client
from roadie.config import Config
from roadie.errors import MalformedPayload
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.middleware import hooks as default_hooks
from roadie.redis.connection import Redis
from roadie.retry import add_dead
from roadie.scripts import Scripts

#: Entries moved per atomic step by the ``*_all`` actions.
BATCH = 100
#: Attempts of a WATCH/MULTI step before giving up on a set that keeps changing.
WATCH_TRIES = 50


class JobKilled(Exception):
    """The exception death handlers receive for a job killed through the API."""


@dataclass(frozen=True, slots=True)
class SortedEntry:
    """One member of a sorted set with its score (epoch seconds)."""

    record: JobRecord
    score: float
    parent: SortedSet = field(compare=False, repr=False)

    # Reading: the record's fields, for convenience.
    @property
    def raw(self) -> bytes:
        return self.record.raw

    @property
    def payload(self) -> dict[str, Any]:
        return self.record.payload

    @property
    def jid(self) -> str:
        return self.record.jid

    @property
    def at(self) -> float:
        """When it runs (schedule, retry) or died (dead): the score."""
        return self.score

    def __getitem__(self, name: str) -> Any:
        return self.record.payload.get(name)

    # Acting.
    def delete(self) -> bool:
        return self.parent.delete(self.raw)

    def retry(self) -> bool:
        """Push it now, ``retry_count`` lowered by one (manual retries are free)."""
        return self.parent.requeue([self.raw], decrement=True) == 1

    def add_to_queue(self) -> bool:
        """Push it now as it is."""
        return self.parent.requeue([self.raw], decrement=False) == 1

    def kill(self) -> bool:
        return len(self.parent.kill([self.raw])) == 1

    def reschedule(self, at: float) -> bool:
        """Change its time (``ZADD XX``: only while it is still in the set)."""
        return self.parent.reschedule(self.raw, at)


class SortedSet(ApiBase):
    """A sorted set of jobs: ``ScheduledSet``, ``RetrySet`` or ``DeadSet``."""

    #: Which of ``Keys``' sorted sets this class reads.
    kind = ""

    def __init__(
        self,
        config: Config | None = None,
        *,
        redis: Redis | None = None,
        keys: Keys | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        super().__init__(config, redis=redis, keys=keys)
        self.key: str = getattr(self.keys, self.kind)
        self.hooks = hooks or default_hooks
        self.scripts = Scripts(self.redis)
        self.client = Client(self.config, redis=self.redis, hooks=self.hooks)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"

    # --- reading -------------------------------------------------------------------
    def size(self) -> int:
        return int(self.redis.zcard(self.key))

    def _entries(self, pairs: Sequence[tuple[bytes, float]]) -> list[SortedEntry]:
        return [SortedEntry(JobRecord.from_raw(raw), float(score), self) for raw, score in pairs]

    def entries(
        self, start: int = 0, count: int = 25, *, reverse: bool = False
    ) -> list[SortedEntry]:
        """``count`` entries from rank ``start``, earliest score first (or last)."""
        if count <= 0:
            return []
        pairs = self.redis.zrange(
            self.key, start, start + count - 1, desc=reverse, withscores=True
        )
        return self._entries(pairs)

    def __iter__(self) -> Iterator[SortedEntry]:
        start = 0
        while True:
            batch = self.entries(start, BATCH)
            yield from batch
            if len(batch) < BATCH:
                return
            start += BATCH

    def scan(self, needle: str, count: int = 100) -> Iterator[SortedEntry]:
        """Entries whose raw JSON contains ``needle`` (``ZSCAN MATCH``)."""
        pattern = f"*{glob_escape(needle)}*"
        for raw, score in self.redis.zscan_iter(self.key, match=pattern, count=count):
            yield SortedEntry(JobRecord.from_raw(raw), float(score), self)

    def find_job(self, jid: str) -> SortedEntry | None:
        for entry in self.scan(jid):
            if entry.jid == jid:
                return entry
        return None

    def fetch(self, score: float, jid: str | None = None) -> list[SortedEntry]:
        """Entries with exactly this score (and this jid, if given)."""
        pairs = self.redis.zrange(self.key, repr(score), repr(score), byscore=True,
                                  withscores=True)
        found = self._entries(pairs)
        return [e for e in found if jid is None or e.jid == jid]

    # --- acting ----------------------------------------------------------------------
    def delete(self, raw: bytes | str) -> bool:
        return int(self.redis.zrem(self.key, as_bytes(raw))) == 1

    def clear(self) -> None:
        self.redis.unlink(self.key)

    delete_all = clear

    def reschedule(self, raw: bytes | str, at: float) -> bool:
        changed = self.redis.zadd(self.key, {as_bytes(raw): at}, xx=True, ch=True)
        return int(changed) == 1 or self.redis.zscore(self.key, as_bytes(raw)) == at

    def requeue(self, raws: Sequence[bytes | str], *, decrement: bool) -> int:
        """Push these members onto their queues now, atomically; returns how many
        were pushed (members already gone, or dropped by middleware, are not)."""
        moves: list[tuple[bytes, bytes | None, str, str]] = []
        for raw in raws:
            data = as_bytes(raw)
            try:
                item = pl.decode(data)
            except MalformedPayload:
                continue  # not a job: nothing could run it; delete or leave it
            count = item.get("retry_count")
            if decrement and isinstance(count, int) and not isinstance(count, bool):
                item["retry_count"] = count - 1
            prepared = self.client.prepare(item)
            queue = str((prepared or item).get("queue") or "default")
            new = pl.encode(prepared) if prepared is not None else None
            moves.append((data, new, self.keys.queue(queue), queue))
        if not moves:
            return 0
        return self.scripts.enqueue_due(self.key, self.keys.queues, moves)

    def kill(self, raws: Sequence[bytes | str], *, notify: bool = True) -> list[bytes]:
        """Move these members to ``dead`` (trimmed); returns the ones moved.

        Death handlers run for each moved job unless ``notify`` is False.
        """
        wanted = list(dict.fromkeys(as_bytes(r) for r in raws))
        if not wanted:
            return []
        moved = self._watched_move(wanted)
        if notify:
            for raw in moved:
                payload = JobRecord.from_raw(raw).payload
                if payload:
                    self.hooks.report_death(payload, JobKilled("Job killed by API"))
        return moved

    def _watched_move(self, wanted: list[bytes]) -> list[bytes]:
        with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(WATCH_TRIES):
                try:
                    pipe.watch(self.key)
                    scores = pipe.zmscore(self.key, wanted)
                    present = [raw for raw, s in zip(wanted, scores, strict=True) if s is not None]
                    if not present:
                        pipe.reset()
                        return []
                    now = pl.now()
                    pipe.multi()
                    pipe.zrem(self.key, *present)
                    for raw in present:
                        add_dead(pipe, self.keys, self.config, raw, now)
                    pipe.execute()
                    return present
                except redis_lib.WatchError:
                    time.sleep(0.001)
        raise RuntimeError(
            f"{self.key} changed {WATCH_TRIES} times while killing jobs; try again"
        )

    def _all(self, act: Callable[[list[bytes]], int]) -> int:
        # Bounded by the size at the start, so jobs that keep failing back into the
        # set while this runs cannot make it loop forever. Entries an action leaves
        # in place (not job JSON) are stepped over.
        budget = self.size()
        skip = 0
        done = 0
        while budget > 0:
            batch = list(self.redis.zrange(self.key, skip, skip + min(BATCH, budget) - 1))
            if not batch:
                break
            budget -= len(batch)
            done += act(batch)
            left = self.redis.zmscore(self.key, batch)
            skip += sum(1 for s in left if s is not None)
        return done

    def retry_all(self) -> int:
        """Push every entry now (``retry_count`` lowered by one); returns how many."""
        return self._all(lambda batch: self.requeue(batch, decrement=True))

    def kill_all(self, *, notify: bool = True) -> int:
        return self._all(lambda batch: len(self.kill(batch, notify=notify)))


class ScheduledSet(SortedSet):
    kind = "schedule"

    def add_all_to_queue(self) -> int:
        return self._all(lambda batch: self.requeue(batch, decrement=False))


class RetrySet(SortedSet):
    kind = "retry"


class DeadSet(SortedSet):
    kind = "dead"

