"""What the pages and the JSON API show, read through ``roadie.api`` (never raw keys).

Everything here is synchronous Redis work; the app runs it in a thread so a
dashboard mounted in an async app never blocks that app's event loop.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from roadie.api import (
    DeadSet,
    JobRecord,
    ProcessSet,
    Queue,
    RetrySet,
    ScheduledSet,
    SortedEntry,
    SortedSet,
    Stats,
    Workers,
    queues,
)
from roadie.api.base import text
from roadie.config import Config
from roadie.keys import Keys
from roadie.redis.connection import Redis, connect

PAGE_SIZE = 25
HISTORY_DAYS = (7, 30, 90, 180)
#: URL name -> (title, class, newest first by default).
SETS: dict[str, tuple[str, type[SortedSet], bool]] = {
    "retries": ("Retries", RetrySet, False),
    "scheduled": ("Scheduled", ScheduledSet, False),
    "dead": ("Dead", DeadSet, True),
}
SET_ACTIONS = ("retry", "enqueue", "delete", "kill")


@dataclass
class Page:
    """One page of a list: its rows and where it sits."""

    items: list[Any]
    page: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return pages_of(self.total, self.size)


def pages_of(total: int, size: int) -> int:
    return max(1, -(-total // size))


def clamp_page(page: int, total: int) -> int:
    """``page`` within 1 and the last page: past the end (``?page=10**21``, which
    Redis cannot take as an index) shows the last page."""
    return min(max(1, page), pages_of(total, PAGE_SIZE))


#: ``entry_key`` read back: the score's ``repr`` (``-1e+20``, ``1e-05``, ``inf``: a
#: minus sign may lead it or sit in its exponent) then ``-`` and the jid.
ENTRY_KEY = re.compile(r"(-?(?:inf|[0-9.]+(?:e[-+][0-9]+)?))-(.*)", re.DOTALL)


def entry_key(entry: SortedEntry) -> str:
    """A URL-safe name for a sorted-set entry: ``<score>-<jid>`` (as Sidekiq)."""
    return f"{entry.score!r}-{entry.jid}"


def record_json(record: JobRecord) -> dict[str, Any]:
    return {
        "jid": record.jid,
        "class": record.display_class,
        "queue": record.queue,
        "args": record.display_args,
        "created_at": record.created_at,
        "enqueued_at": record.enqueued_at,
        "failed_at": record.failed_at,
        "retry_count": record.retry_count,
        "error_class": record.error_class,
        "error_message": record.error_message,
        "payload": record.payload,
    }


class Data:
    """One Redis connection pool shared by every page of one app."""

    def __init__(self, config: Config, redis: Redis | None = None) -> None:
        self.config = config
        self.keys = Keys(config.namespace)
        self.redis: Redis = redis if redis is not None else connect(config)

    def _share(self) -> dict[str, Any]:
        return {"redis": self.redis, "keys": self.keys}

    # --- reading -----------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        s = Stats(self.config, **self._share()).summary()
        return {
            "processed": s.processed, "failed": s.failed, "busy": s.busy,
            "enqueued": s.enqueued, "retries": s.retry_size, "scheduled": s.scheduled_size,
            "dead": s.dead_size, "processes": s.processes_size,
            "default_latency": round(s.default_queue_latency, 3),
            "queues": s.queues, "at": time.time(),
        }

    def history(self, days: int) -> dict[str, dict[str, int]]:
        h = Stats(self.config, **self._share()).history(days)
        return {"processed": h.processed, "failed": h.failed}

    def redis_info(self) -> dict[str, str]:
        info = self.redis.info()
        names = ("redis_version", "uptime_in_days", "connected_clients",
                 "used_memory_human", "used_memory_peak_human")
        return {n: text(info.get(n)) if isinstance(info.get(n), bytes)
                else str(info.get(n, "")) for n in names}

    def queue_list(self) -> list[dict[str, Any]]:
        paused = self.paused()
        return [{"name": q.name, "size": q.size(), "latency": round(q.latency(), 3),
                 "paused": q.name in paused}
                for q in queues(self.config, **self._share())]

    def paused(self) -> set[str]:
        return {text(m) for m in self.redis.smembers(self.keys.paused)}

    def queue(self, name: str) -> Queue:
        return Queue(name, self.config, **self._share())

    def queue_page(self, name: str, page: int) -> Page:
        q = self.queue(name)
        total = q.size()
        page = clamp_page(page, total)
        start = (page - 1) * PAGE_SIZE
        return Page(q.entries(start, PAGE_SIZE), page, PAGE_SIZE, total)

    def sorted_set(self, name: str) -> SortedSet:
        cls = SETS[name][1]
        return cls(self.config, **self._share())

    def set_page(self, name: str, page: int, query: str = "", desc: bool | None = None
                 ) -> Page:
        sset = self.sorted_set(name)
        reverse = SETS[name][2] if desc is None else desc
        if query:
            found = sorted(sset.scan(query), key=lambda e: e.score, reverse=reverse)
            page = clamp_page(page, len(found))
            start = (page - 1) * PAGE_SIZE
            return Page(found[start:start + PAGE_SIZE], page, PAGE_SIZE, len(found))
        total = sset.size()
        page = clamp_page(page, total)
        start = (page - 1) * PAGE_SIZE
        return Page(sset.entries(start, PAGE_SIZE, reverse=reverse), page, PAGE_SIZE, total)

    def find_entry(self, name: str, key: str) -> SortedEntry | None:
        parsed = ENTRY_KEY.fullmatch(key)
        if parsed is None:
            return None
        found = self.sorted_set(name).fetch(float(parsed.group(1)), parsed.group(2))
        return found[0] if found else None

    def processes(self) -> list[Any]:
        return ProcessSet(self.config, **self._share()).processes()

    def work(self) -> list[Any]:
        return Workers(self.config, **self._share()).entries()

    # --- acting --------------------------------------------------------------------
    def act_on_entries(self, name: str, keys_: list[str], action: str) -> int:
        done = 0
        for key in keys_:
            entry = self.find_entry(name, key)
            if entry is None:
                continue
            ok = {"retry": entry.retry, "enqueue": entry.add_to_queue,
                  "delete": entry.delete, "kill": entry.kill}[action]()
            done += int(ok)
        return done

    def act_on_all(self, name: str, action: str) -> int:
        sset = self.sorted_set(name)
        if action == "delete":
            size = sset.size()
            sset.clear()
            return size
        if action == "kill":
            return sset.kill_all()
        if action == "enqueue" and isinstance(sset, ScheduledSet):
            return sset.add_all_to_queue()
        return sset.retry_all()

    def signal(self, identity: str, action: str) -> int:
        procs = ProcessSet(self.config, **self._share())
        if identity == "*":
            return procs.quiet_all() if action == "quiet" else procs.stop_all()
        proc = procs.get(identity)
        if proc is None:
            return 0
        if action == "quiet":
            proc.quiet()
        else:
            proc.stop()
        return 1

    def pause(self, name: str, paused: bool) -> None:
        if paused:
            self.redis.sadd(self.keys.paused, name)
        else:
            self.redis.srem(self.keys.paused, name)
