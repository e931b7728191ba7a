"""The scheduled/retry poller: due entries of ``retry`` then ``schedule`` -> queues.

Each due entry moves in one atomic step (``lua/enqueue_due.lua``), with its
``enqueued_at`` refreshed and client middleware run again, as Sidekiq does. The
wait between polls is random and scaled by the number of processes, so that the
cluster as a whole polls about every ``poll_interval_average_s``.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from roadie import payload as pl
from roadie.config import Config
from roadie.errors import MalformedPayload
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.redis.connection import Redis
from roadie.retry import malformed_entry
from roadie.scripts import Scripts
from roadie.server.outage import TRANSIENT, Backoff, Outage

log = logging.getLogger("roadie")

BATCH = 100


class Poller:
    def __init__(
        self, redis: Redis, config: Config, keys: Keys, hooks: Hooks, outage: Outage,
        stop: threading.Event,
    ) -> None:
        self.redis = redis
        self.config = config
        self.keys = keys
        self.hooks = hooks
        self.outage = outage
        self.scripts = Scripts(redis)
        self._stop = stop
        self.thread = threading.Thread(target=self._run, name="roadie.poller", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def interval_s(self) -> float:
        if self.config.poll_interval_fixed_s is not None:
            avg = self.config.poll_interval_fixed_s
            count = 1
        else:
            count = max(1, int(self.redis.scard(self.keys.processes)))
            avg = self.config.poll_interval_average_s * count
        r = random.random()
        return avg * r + avg / 2 if count < 10 else avg * r

    def _run(self) -> None:
        # A short first wait: jobs that fell due while every process was down run soon.
        wait = random.random() * min(1.0, self.config.poll_interval_average_s)
        backoff = Backoff()
        while not self._stop.wait(wait):
            try:
                self.enqueue_due()
                wait = self.interval_s()
                self.outage.ok()
                backoff.reset()
            except TRANSIENT as exc:
                self.outage.failed(exc, "poller")
                wait = backoff.next_s
                backoff.next_s = min(backoff.cap_s, backoff.next_s * 2)
            except Exception:
                log.exception("scheduled poller failed; trying again next cycle")
                wait = self.config.poll_interval_average_s

    def enqueue_due(self, now: float | None = None) -> int:
        """Move every due entry; returns how many jobs reached their queues."""
        moved = 0
        for zset in (self.keys.retry, self.keys.schedule):
            while not self._stop.is_set():
                t = time.time() if now is None else now
                members = self.redis.zrange(
                    zset, "-inf", repr(t), byscore=True, offset=0, num=BATCH
                )
                if not members:
                    break
                moves: list[tuple[bytes, bytes | None, str, str]] = []
                for raw in members:
                    try:
                        payload = pl.decode(raw)
                    except MalformedPayload as exc:
                        self._bury(zset, raw, exc)
                        continue
                    queue = str(payload.get("queue") or "default")
                    payload["enqueued_at"] = pl.now()
                    result = self.hooks.run_client(payload["class"], payload, queue)
                    new = pl.encode(result) if result is not None else None
                    if result is not None:
                        queue = str(result.get("queue") or queue)
                    moves.append((raw, new, self.keys.queue(queue), queue))
                if moves:
                    moved += self.scripts.enqueue_due(zset, self.keys.queues, moves)
                if len(members) < BATCH:
                    break
        return moved

    def _bury(self, zset: str, raw: bytes, exc: MalformedPayload) -> None:
        log.error("%s (in %s); moved to the dead set with the reason, the entry kept as "
                  "it was", exc, zset)
        at = pl.now()
        self.scripts.fail(zset, self.keys.dead, raw, malformed_entry(raw, str(exc), "default", at),
                          at, trim_below=at - self.config.dead_timeout_s,
                          keep=self.config.dead_max_jobs, from_sorted_set=True)
