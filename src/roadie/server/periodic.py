"""The periodic scheduler: pushes each tick of each schedule, once for the cluster.

Every process runs one (thread ``roadie.periodic``) and tries every tick of every
schedule; ``lua/periodic_tick.lua`` lets the first try of a tick record it as the
schedule's last run and push the job in one atomic step, and turns the others away.

Missed ticks: a schedule's next tick is computed from its last run (``roadie:periodic:last``),
or from when it was first registered, so ticks that passed while every process was
down are noticed at start. They collapse into one run of the latest of them: with
``missed="run_once"`` it is pushed; with ``missed="skip"`` it is pushed only if it is
at most ``grace_s`` old. The same holds for a process that could not reach Redis
for a while.

Time is injected: ``register(now)`` and ``run_due(now)`` do one step each, so
tests drive ticks without waiting for the clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from roadie import payload as pl
from roadie.client import DEFAULTS, Client
from roadie.config import Config
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.redis.connection import Redis
from roadie.registry import Registry
from roadie.schedule import Schedule
from roadie.scripts import Scripts
from roadie.server.outage import TRANSIENT, Backoff, Outage

log = logging.getLogger("roadie")

#: Each process writes its schedules' definitions this often (``updated_at``),
#: so that ``roadie periodic`` can tell schedules still run from forgotten ones.
REFRESH_S = 30.0
#: Longest sleep between two looks at the clock (a wall-clock jump is noticed).
MAX_WAIT_S = 1.0


@dataclass(frozen=True, slots=True)
class Tick:
    """What one process did about one tick."""

    name: str
    #: The tick, epoch seconds.
    at: float
    #: True if this process pushed it; False if another process had taken it.
    pushed: bool
    #: The pushed job's jid (None if not pushed or dropped by client middleware).
    jid: str | None
    #: Ticks of this schedule before ``at`` that passed without this process
    #: seeing them (they collapse into this one).
    missed: int = 0
    #: True when the ``skip`` policy dropped this tick as too late.
    skipped: bool = False


class PeriodicScheduler:
    def __init__(
        self,
        redis: Redis,
        config: Config,
        keys: Keys,
        hooks: Hooks,
        registry: Registry,
        outage: Outage,
        stop: threading.Event,
        schedules: Iterable[Schedule],
        *,
        identity: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.config = config
        self.keys = keys
        self.registry = registry
        self.outage = outage
        self.identity = identity
        self.clock = clock
        self.schedules = list(schedules)
        self.client = Client(config, redis=redis, hooks=hooks)
        self.scripts = Scripts(redis)
        self._stop = stop
        #: Schedule name -> the next tick this process will look at.
        self.next_at: dict[str, float] = {}
        self._refreshed_at = float("-inf")
        self.thread = threading.Thread(target=self._run, name="roadie.periodic", daemon=True)

    def start(self) -> None:
        if self.schedules:
            log.info("periodic jobs: %s", ", ".join(
                f"{s.name} ({s.cron}, {s.tz})" for s in self.schedules))
            for s in self.schedules:
                if s.job_name not in self.registry:
                    log.warning(
                        "periodic job %s: no job class %s is loaded here; it is pushed by "
                        "name (fine for a job of another codebase, else load it with -r)",
                        s.name, s.job_name,
                    )
            self.thread.start()

    # --- one step each -------------------------------------------------------
    def queue_of(self, schedule: Schedule) -> str:
        if schedule.queue:
            return schedule.queue
        job_cls = self.registry.find(schedule.job_name)
        queue = job_cls.options.get("queue") if job_cls is not None else None
        return str(queue or DEFAULTS["queue"])

    def register(self, now: float | None = None) -> None:
        """Write the definitions to ``roadie:periodic``; set each schedule's next tick
        from its last run (or from when it was first registered)."""
        now = self.clock() if now is None else now
        names = [s.name for s in self.schedules]
        if not names:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.periodic, names)
        pipe.hmget(self.keys.periodic_last, names)
        defs, lasts = pipe.execute()
        writes: dict[str, bytes] = {}
        next_at: dict[str, float] = {}
        for schedule, old_raw, last_raw in zip(self.schedules, defs, lasts, strict=True):
            since = now
            try:
                old: Any = orjson.loads(old_raw) if old_raw else None
            except orjson.JSONDecodeError:
                old = None
            # A schedule whose timing changed starts afresh: ticks of its old cron
            # that were missed are no reason for a catch-up run of the new one.
            if (
                isinstance(old, dict)
                and old.get("cron") == schedule.cron
                and old.get("tz") == schedule.tz
                and isinstance(old.get("since"), (int, float))
            ):
                since = float(old["since"])
            writes[schedule.name] = self._definition(schedule, since, now)
            last = float(last_raw) if last_raw else float("-inf")
            next_at[schedule.name] = schedule.next_after(max(since, last))
        self.redis.hset(self.keys.periodic, mapping=writes)
        # Only once the definitions are written: a failed register is tried again.
        self.next_at = next_at
        self._refreshed_at = now

    def _definition(self, schedule: Schedule, since: float, now: float) -> bytes:
        return orjson.dumps({
            **schedule.definition(),
            "queue": self.queue_of(schedule),
            "since": since,
            "updated_at": now,
            "identity": self.identity,
        })

    def refresh(self, now: float) -> None:
        """Mark the definitions as still run (``updated_at``), keeping ``since``."""
        defs = self.redis.hmget(self.keys.periodic, [s.name for s in self.schedules])
        writes: dict[str, bytes] = {}
        for schedule, raw in zip(self.schedules, defs, strict=True):
            since = now
            try:
                old: Any = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                old = None
            if isinstance(old, dict) and isinstance(old.get("since"), (int, float)):
                since = float(old["since"])
            writes[schedule.name] = self._definition(schedule, since, now)
        self.redis.hset(self.keys.periodic, mapping=writes)
        self._refreshed_at = now

    def run_due(self, now: float | None = None) -> list[Tick]:
        """Handle every tick due at ``now``; returns what was done, per schedule."""
        now = self.clock() if now is None else now
        if not self.next_at and self.schedules:
            self.register(now)
        done: list[Tick] = []
        for schedule in self.schedules:
            due = self.next_at[schedule.name]
            if now < due:
                continue
            latest = schedule.latest_at_or_before(now)
            if latest is None or latest < due:
                self.next_at[schedule.name] = schedule.next_after(now)
                continue
            missed = self._count_between(schedule, due, latest)
            late = now - latest > schedule.grace_s
            if late and schedule.missed == "skip":
                log.info(
                    "periodic job %s: skipping the tick of %s, %.0f s late (missed=skip)",
                    schedule.name, _show(schedule, latest), now - latest,
                )
                done.append(Tick(schedule.name, latest, False, None, missed, skipped=True))
            else:
                pushed, jid = self.push(schedule, latest)
                if pushed and (late or missed):
                    log.info(
                        "periodic job %s: catch-up run for the tick of %s (%d earlier "
                        "tick(s) missed)", schedule.name, _show(schedule, latest), missed,
                    )
                done.append(Tick(schedule.name, latest, pushed, jid, missed))
            self.next_at[schedule.name] = schedule.next_after(latest)
        if now - self._refreshed_at >= REFRESH_S:
            self.refresh(now)
        return done

    @staticmethod
    def _count_between(schedule: Schedule, start: float, end: float, cap: int = 1000) -> int:
        """Ticks in [start, end) (at most ``cap``: only a log line uses it)."""
        count = 0
        at = start
        while at < end and count < cap:
            count += 1
            at = schedule.next_after(at)
        return count

    def push(self, schedule: Schedule, at: float) -> tuple[bool, str | None]:
        """Try to take tick ``at`` of ``schedule``; push its job if this process does."""
        job_cls = self.registry.find(schedule.job_name)
        item: dict[str, Any] = {
            **(job_cls.options if job_cls is not None else {}),
            "class": schedule.job_name,
            "args": list(schedule.args),
            "periodic": schedule.name,
            "periodic_at": at,
        }
        if schedule.queue:
            item["queue"] = schedule.queue
        payload = self.client.prepare(item)
        queue = str(payload["queue"]) if payload is not None else self.queue_of(schedule)
        raw = pl.encode(payload) if payload is not None else None
        pushed = self.scripts.periodic_tick(
            self.keys.periodic_last, self.keys.queues, self.keys.queue(queue),
            schedule.name, int(at), raw, queue,
        )
        jid = str(payload["jid"]) if pushed and payload is not None else None
        if pushed:
            log.debug("periodic job %s: pushed the tick of %s (jid %s)",
                      schedule.name, _show(schedule, at), jid)
        return pushed, jid

    def wait_s(self, now: float | None = None) -> float:
        """How long to sleep before the next due tick (at most ``MAX_WAIT_S``)."""
        now = self.clock() if now is None else now
        if not self.next_at:
            return MAX_WAIT_S
        return max(0.001, min(MAX_WAIT_S, min(self.next_at.values()) - now))

    # --- the thread ----------------------------------------------------------
    def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                self.run_due()
                self.outage.ok()
                backoff.reset()
                wait = self.wait_s()
            except TRANSIENT as exc:
                self.outage.failed(exc, "periodic scheduler")
                wait = backoff.next_s
                backoff.next_s = min(backoff.cap_s, backoff.next_s * 2)
            except Exception:
                log.exception("periodic scheduler failed; trying again in 1 s")
                wait = 1.0
            if self._stop.wait(wait):
                break


def _show(schedule: Schedule, at: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(at, schedule.zone).isoformat()
