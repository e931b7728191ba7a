"""The janitor: returns the in-flight jobs of dead processes to their queues.

Every process runs one. Each cycle it lists the owners of in-flight lists
(``roadie:inflight-owners``) and, for each whose liveness key has expired
(``process_ttl_s`` after its last beat), moves its jobs back to the front of
their queues with ``lua/recover.lua``, which re-checks liveness atomically.

The crash-loop rule: a job that was *running* when its process died counts a crash
(``roadie_crashes`` + 1); at ``max_crashes`` in a row it goes to the dead set
instead, since it is probably what kills its processes. Jobs fetched with it but
not started go back unmarked. Which jobs were running comes from, in order:

1. the death record (``roadie:died:<identity>``) that the process's pulse wrote
   when it saw its parent die (or that a worker stopped for its memory wrote);
2. if there is none (the pulse died too: power loss, a kill of the whole process
   group), the jobs the process's last heartbeat listed in ``<identity>:work``;
3. if that expired too, none: every job goes back unmarked.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

import orjson

from roadie import payload as pl
from roadie.config import Config
from roadie.errors import JobCrashedProcess, MalformedPayload
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.redis.connection import Redis
from roadie.retry import CRASH_FIELD, malformed_entry, record_error
from roadie.scripts import Scripts
from roadie.server.outage import TRANSIENT, Outage
from roadie.server.state import run_mark

log = logging.getLogger("roadie")

CHUNK = 200

#: The death's cause named in the crash-loop message when no death record says it.
FROM_HEARTBEAT = ("it died leaving no death record (its pulse died with it: a power "
                  "loss, or a kill of the whole process group?)")


class Deaths:
    """Which jobs a dead process was running (their ``run_mark``), and why it died."""

    def __init__(self, running: set[str], reason: str) -> None:
        self.running = running
        self.reason = reason

    def was_running(self, raw: bytes) -> bool:
        return run_mark(raw).decode("latin-1") in self.running


class Janitor:
    def __init__(
        self, redis: Redis, config: Config, keys: Keys, identity: str, outage: Outage,
        stop: threading.Event, *, hooks: Hooks | None = None,
        held: Callable[[], set[bytes]] | None = None,
    ) -> None:
        self.redis = redis
        self.config = config
        self.keys = keys
        self.identity = identity
        self.outage = outage
        self.scripts = Scripts(redis)
        self._stop = stop
        self.hooks = hooks
        #: The raws this process's processors hold (running, or awaiting their ack).
        self.held = held
        self._suspects: set[bytes] = set()
        self.thread = threading.Thread(target=self._run, name="roadie.janitor", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        wait = random.random() * self.config.janitor_interval_s
        while not self._stop.wait(wait):
            wait = self.config.janitor_interval_s * (0.5 + random.random())
            try:
                self.sweep()
                self.outage.ok()
            except TRANSIENT as exc:
                self.outage.failed(exc, "janitor")
            except Exception:
                log.exception("janitor sweep failed; trying again next cycle")

    def sweep(self) -> int:
        """Recover every dead owner's jobs; returns how many jobs were handled."""
        if self.held is not None:
            self.check_own()
        if self.outage.down:
            # This sweep may be the first command to get through after an outage
            # (``ok()`` runs after it): other processes' liveness keys may have
            # expired meanwhile. Judge nobody now; the wait below applies next time.
            return 0
        recovered_at = self.outage.recovered_at
        if recovered_at is not None and (
            time.monotonic() - recovered_at
            < self.config.process_ttl_s + self.config.heartbeat_interval_s
        ):
            # Right after an outage every liveness key may have expired, live
            # processes' too: wait until they have had the time to beat again.
            return 0
        owners = [o.decode() for o in self.redis.smembers(self.keys.inflight_owners)]
        owners = [o for o in owners if o != self.identity]
        if not owners:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for owner in owners:
            pipe.exists(self.keys.alive(owner))
        alive = pipe.execute()
        total = 0
        for owner, is_alive in zip(owners, alive, strict=True):
            if not is_alive:
                total += self.recover(owner)
        return total

    def check_own(self) -> int:
        """Push back jobs in this process's in-flight list that no processor holds.

        That can only follow a lost reply (a fetch that Redis ran but whose answer
        never arrived). A job must be seen orphaned at two sweeps in a row, so a
        fetch that is just landing is never mistaken for one.
        """
        assert self.held is not None
        inflight = self.keys.inflight(self.identity)
        raws = set(self.redis.lrange(inflight, 0, -1))
        orphans = raws - self.held()
        confirmed = orphans & self._suspects
        self._suspects = orphans - confirmed
        if not confirmed:
            return 0
        entries = []
        for raw in confirmed:
            try:
                queue = str(pl.decode(raw).get("queue") or "default")
            except MalformedPayload:
                queue = "default"
            entries.append((raw, self.keys.queue(queue)))
        n = self.scripts.requeue(inflight, entries)
        if n:
            log.warning("pushed back %d job(s) left in this process's in-flight list by a "
                        "lost Redis reply", n)
        return n

    def recover(self, owner: str) -> int:
        lock = self.keys.recover_lock(owner)
        if not self.redis.set(lock, self.identity, nx=True, ex=60):
            return 0  # another janitor is on it
        try:
            handled, died, crashed = 0, 0, 0
            inflight = self.keys.inflight(owner)
            deaths = self.deaths(owner)
            while True:
                # Newest first: each chunk is RPUSHed after the previous one, so the
                # oldest jobs (at the list's tail) must come last to run first.
                raws = self.redis.lrange(inflight, 0, CHUNK - 1)
                if not raws:
                    break
                entries = [self._entry(raw, deaths) for raw in raws]
                now = pl.now()
                n = self.scripts.recover(
                    inflight, self.keys.alive(owner), self.keys.dead, now,
                    now - self.config.dead_timeout_s, self.config.dead_max_jobs, entries,
                )
                if n < 0:
                    log.info("process %s came back to life; leaving its jobs alone", owner)
                    return handled
                if n == 0:
                    break  # entries vanished under us; nothing more to do now
                handled += n
                crashed += sum(1 for raw, _, new, _ in entries if new is not raw)
                buried = [e for e in entries if e[1] == "d"]
                died += len(buried)
                self._report_deaths(buried)
            if self.redis.llen(inflight) == 0:
                pipe = self.redis.pipeline(transaction=True)
                pipe.srem(self.keys.inflight_owners, owner)
                pipe.unlink(self.keys.died(owner))
                pipe.execute()
            if handled:
                log.warning(
                    "recovered %d in-flight job(s) of dead process %s (%d to the dead set "
                    "for crashing processes repeatedly); %d were running when it died and "
                    "count a crash, the others had not started", handled, owner, died,
                    crashed,
                )
            return handled
        finally:
            self.redis.delete(lock)

    def _report_deaths(self, buried: list[tuple[bytes, str, bytes, str | None]]) -> None:
        if self.hooks is None:
            return
        for _, _, new, _ in buried:
            try:
                payload = pl.decode(new)
            except MalformedPayload:
                continue
            exc = JobCrashedProcess(str(payload.get("error_message", "")))
            self.hooks.report_death(payload, exc)

    def deaths(self, owner: str) -> Deaths:
        """What ``owner`` was running when it died: its death record, else its last
        heartbeat's work hash, else nothing (see the module's docstring)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.died(owner))
        pipe.hvals(self.keys.work(owner))
        record, work = pipe.execute()
        if record is not None:
            try:
                found = orjson.loads(record)
                running = {str(m) for m in found.get("running", [])}
                return Deaths(running, str(found.get("reason") or ""))
            except (orjson.JSONDecodeError, AttributeError, TypeError):
                log.warning("the death record of %s is not valid JSON; ignoring it", owner)
        running = set()
        for entry in work:
            try:
                raw = str(orjson.loads(entry)["payload"]).encode()
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
            running.add(run_mark(raw).decode("latin-1"))
        return Deaths(running, FROM_HEARTBEAT)

    def _entry(self, raw: bytes, deaths: Deaths) -> tuple[bytes, str, bytes, str | None]:
        """What to do with one orphan: requeue it (with one more crash if it was
        running when its process died), or bury a repeat offender."""
        try:
            payload = pl.decode(raw)
        except MalformedPayload as bad:
            log.error("%s (in flight at a dead process); moved to the dead set with the "
                      "reason, the entry kept as it was", bad)
            return (raw, "d", malformed_entry(raw, str(bad), "default", pl.now()), None)
        queue = str(payload.get("queue") or "default")
        if not deaths.was_running(raw):
            # Fetched with others but not started: it did nothing to its process.
            return (raw, "q", raw, self.keys.queue(queue))
        crashes = payload.get(CRASH_FIELD)
        crashes = (crashes if isinstance(crashes, int) else 0) + 1
        if crashes >= self.config.max_crashes:
            last = f" The last time, {deaths.reason}." if deaths.reason else ""
            exc = JobCrashedProcess(
                f"this job was running each of the {crashes} times in a row that its "
                "process died (killed with -9, out of memory, or a crash in C code?); "
                "roadie stopped recovering it so that it cannot take down more processes."
                f"{last} Fix the cause, then retry it from the dead set."
            )
            record_error(payload, exc, queue, pl.now())
            return (raw, "d", pl.encode(payload), None)
        payload[CRASH_FIELD] = crashes
        return (raw, "q", pl.encode(payload), self.keys.queue(queue))
