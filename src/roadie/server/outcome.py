"""What a job's run leads to, written to Redis: the one place where a job leaves the
in-flight list after it ran.

* ``succeeded``: acknowledged (``LREM``). Most successes are not written here one by
  one: the processor holds them and their acknowledgement rides on its next fetch
  (``fetch.lua``), or ``acknowledge`` writes several at once.
* ``failed``: ``retry.decide`` says retry, dead or discard, from the payload and the
  class's options; the retry or dead entry replaces the in-flight one in one step
  (``fail.lua``); death handlers run after.
* ``malformed``: a queue entry that is not a job goes to the dead set with the reason.
* ``requeue``: jobs fetched and not started go back to the front of their queues.

Every write goes through Redis outages (and a full or ACL-denied Redis): it is tried
again with backoff, the job staying in flight meanwhile, never run again, until it
gets through or the job is abandoned (pushed back by the launcher at a hard stop).

This is the seam where later features hook into a job's outcome (batches, unique
locks, limits, results): their state must change in the same atomic step as the
job's outcome, so their writes join these.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from roadie import payload as pl
from roadie.config import Config
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.retry import decide, malformed_entry
from roadie.server.fetch import Fetcher, UnitOfWork
from roadie.server.outage import TRANSIENT, Backoff, Outage

log = logging.getLogger("roadie")
T = TypeVar("T")

#: Class options that shape what a failure leads to.
RETRY_OPTIONS = ("retry", "retry_queue", "dead", "backtrace", "retry_for")


class Outcomes:
    """One processor's outcome writes, on its fetcher's connection."""

    def __init__(self, fetcher: Fetcher, config: Config, hooks: Hooks, outage: Outage,
                 abandoned: Callable[[], bool]) -> None:
        self.fetcher = fetcher
        self.config = config
        self.hooks = hooks
        self.outage = outage
        #: True once the launcher pushed the running job back at a hard stop: nothing
        #: more is written for it.
        self.abandoned = abandoned

    def succeeded(self, uow: UnitOfWork) -> None:
        self.write(lambda: self.fetcher.ack(uow))

    def acknowledge(self, raws: Sequence[bytes]) -> None:
        """Several successes at once (one round trip)."""
        self.write(lambda: self.fetcher.ack_many(raws))

    def failed(self, uow: UnitOfWork, payload: pl.Payload, exc: BaseException, queue: str,
               job_cls: type[Job] | None) -> None:
        if job_cls is not None:
            # A payload pushed by name (another codebase, Ruby) lacks the class's
            # options: the class's retry policy applies where the payload is silent.
            for key in RETRY_OPTIONS:
                if key not in payload and key in job_cls.options:
                    payload[key] = job_cls.options[key]
        outcome = decide(payload, exc, queue, self.config, job_cls)
        if outcome.action == "retry":
            raw = pl.encode(outcome.payload)
            self.write(lambda: self.fetcher.retry(uow, raw, outcome.retry_at))
        elif outcome.action == "dead":
            raw = pl.encode(outcome.payload)
            self.write(lambda: self.fetcher.dead(uow, raw))
            log.warning("Adding dead %s job %s", pl.display_class(payload), payload.get("jid"))
        else:
            self.write(lambda: self.fetcher.ack(uow))
        if outcome.died:
            self.hooks.report_death(outcome.payload, exc)

    def malformed(self, uow: UnitOfWork, reason: str, queue: str) -> None:
        log.error("%s; moved to the dead set with the reason, the entry kept as it was",
                  reason, extra={"roadie": {"queue": queue}})
        entry = malformed_entry(uow.raw, reason, queue, pl.now())
        self.write(lambda: self.fetcher.dead(uow, entry))

    def requeue(self, uows: Sequence[UnitOfWork]) -> None:
        """Jobs not started, back to the front of their queues; ``uows`` oldest last."""
        if uows:
            self.retry_through_outages(lambda: self.fetcher.requeue(list(uows)), "requeue")

    def write(self, op: Callable[[], Any]) -> None:
        if self.abandoned():
            return
        self.retry_through_outages(op, "outcome")

    def retry_through_outages(self, op: Callable[[], T], where: str) -> T | None:
        """Run ``op`` until Redis takes it; give up only if the job was abandoned."""
        backoff = Backoff()
        while True:
            try:
                result = op()
                self.outage.ok(where)
                return result
            except TRANSIENT as exc:
                self.outage.failed(exc, where)
                if self.abandoned():
                    return None
                backoff.wait(threading.Event())
