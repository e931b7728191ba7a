"""Periodic jobs as the cluster runs them: each schedule with its last and next run.

Every running process writes the definitions of the schedules it runs into
``roadie:periodic`` (at start, then every 30 s with ``updated_at``); the tick script
records each schedule's last run in ``roadie:periodic:last``. The next run is
computed from the cron expression and time zone. Schedules that only this
program knows (its loaded modules, its config file) can be listed alongside::

    for entry in PeriodicSet(config).entries(local=roadie.default_schedules):
        print(entry.name, entry.cron, entry.last_run_at, entry.next_run_at, entry.state)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from roadie.api.base import ApiBase, parse_object, text, to_float
from roadie.errors import ConfigError
from roadie.registry import Registry
from roadie.schedule import Schedule, make_schedule

#: A definition not refreshed for this long is no longer run by any process
#: (processes refresh every 30 s).
STALE_S = 90.0


@dataclass(frozen=True, slots=True)
class PeriodicEntry:
    name: str
    cron: str
    tz: str
    job_name: str
    queue: str
    args: list[Any]
    missed: str
    #: The last tick pushed (epoch seconds), None if it never ran.
    last_run_at: float | None
    #: The next tick after now (epoch seconds), None if it cannot be computed.
    next_run_at: float | None
    #: When a running process last said it runs this schedule (None: never).
    updated_at: float | None
    #: ``active`` (a process runs it), ``stale`` (in Redis, but no process has
    #: refreshed it lately) or ``local`` (only known to this program).
    state: str


class PeriodicSet(ApiBase):
    """Read ``roadie:periodic`` and ``roadie:periodic:last``; forget a schedule."""

    def entries(
        self,
        local: Iterable[Schedule] = (),
        now: float | None = None,
        registry: Registry | None = None,
    ) -> list[PeriodicEntry]:
        """Every schedule in Redis, plus those of ``local`` not there; by name.
        ``registry`` gives the queue of a local schedule's job class."""
        now = time.time() if now is None else now
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.periodic)
        pipe.hgetall(self.keys.periodic_last)
        defs, lasts = pipe.execute()
        last_by_name = {text(k): _number(v) for k, v in lasts.items()}
        out: dict[str, PeriodicEntry] = {}
        for raw_name, raw in defs.items():
            name = text(raw_name)
            data = parse_object(raw) or {}
            updated = _number(data.get("updated_at"))
            state = "active" if updated is not None and now - updated <= STALE_S else "stale"
            out[name] = self._entry(name, data, last_by_name.get(name), updated, state, now)
        for schedule in local:
            if schedule.name not in out:
                job_cls = registry.find(schedule.job_name) if registry is not None else None
                queue = schedule.queue or (job_cls.options.get("queue") if job_cls else None)
                data = {**schedule.definition(), "queue": queue or "default"}
                out[schedule.name] = self._entry(
                    schedule.name, data, last_by_name.get(schedule.name), None, "local", now
                )
        return [out[name] for name in sorted(out)]

    @staticmethod
    def _entry(
        name: str, data: dict[str, Any], last: float | None, updated: float | None,
        state: str, now: float,
    ) -> PeriodicEntry:
        cron = str(data.get("cron") or "")
        tz = str(data.get("tz") or "UTC")
        job_name = str(data.get("class") or "?")
        args = data.get("args")
        next_at: float | None
        try:
            next_at = make_schedule(cron, job_name, name=name, tz=tz).next_after(now)
        except ConfigError:
            next_at = None
        return PeriodicEntry(
            name=name, cron=cron, tz=tz, job_name=job_name,
            queue=str(data.get("queue") or "default"),
            args=args if isinstance(args, list) else [],
            missed=str(data.get("missed") or "run_once"),
            last_run_at=last, next_run_at=next_at, updated_at=updated, state=state,
        )

    def remove(self, name: str) -> bool:
        """Forget a schedule no process runs any more (its definition and last run).
        A process that still runs it writes it again within 30 s."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.keys.periodic, name)
        pipe.hdel(self.keys.periodic_last, name)
        removed, _ = pipe.execute()
        return bool(removed)


def _number(value: Any) -> float | None:
    """A finite float, else None: ``inf`` or ``nan`` stored by hand is no time and
    could not go into the JSON API."""
    if value is None or isinstance(value, bool):
        return None
    number = to_float(value, math.nan)
    return None if math.isnan(number) else number
