"""Periodic schedules as plain data: a cron expression in a time zone, the job's
name and arguments, and what happens to missed ticks.

This is what ``roadie.toml``'s ``[[roadie.periodic]]`` tables, the dashboard and the
scheduler (``server/periodic.py``) read; it knows jobs by name only, so the config
can hold schedules without importing any Job. ``roadie.periodic(...)`` (``cron.py``)
takes a Job class or an ``@roadie.job`` function and makes one of these.

Cron expressions are parsed by croniter: five fields, or six with seconds as the
*last* field (``"*/10 * * * * *"`` is every ten seconds). Times are computed in the
schedule's time zone (``tz``, UTC by default), so ``0 3 * * *`` in Europe/Paris is
03:00 Paris time in summer and winter alike.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from roadie import payload as pl
from roadie.errors import ArgumentTypeError, ConfigError

#: ``run_once``: ticks missed while no process ran collapse into one run, at start.
#: ``skip``: they are dropped; the schedule waits for its next tick.
MISSED_POLICIES = ("run_once", "skip")

#: A tick noticed at most this late is on time, whatever the ``missed`` policy
#: (a process that restarts a few seconds after a tick still runs it).
DEFAULT_GRACE_S = 60.0

#: The keys a ``[[roadie.periodic]]`` table may have.
TABLE_KEYS = ("cron", "class", "args", "tz", "queue", "name", "missed", "grace_s")


@dataclass(frozen=True, slots=True)
class Schedule:
    """One periodic job: push ``job_name`` with ``args`` at every tick of ``cron``."""

    name: str
    cron: str
    job_name: str
    args: tuple[Any, ...] = ()
    tz: str = "UTC"
    #: None: the job class's own queue (or ``default`` for a job pushed by name).
    queue: str | None = None
    missed: str = "run_once"
    grace_s: float = DEFAULT_GRACE_S

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def _iter(self, at: float) -> croniter:
        return croniter(self.cron, datetime.fromtimestamp(at, self.zone))

    def next_after(self, at: float) -> float:
        """The first tick strictly after ``at`` (epoch seconds)."""
        return float(self._iter(at).get_next(float))

    def latest_at_or_before(self, at: float) -> float | None:
        """The last tick at or before ``at``; None if the expression has none."""
        # Ticks fall on whole seconds and croniter's get_prev is strict, so
        # starting one second past floor(at) makes a tick exactly at ``at`` count.
        try:
            return float(self._iter(math.floor(at) + 1).get_prev(float))
        except CroniterError:
            return None

    def definition(self) -> dict[str, Any]:
        """The schedule as JSON-ready data (what ``roadie:periodic`` stores)."""
        return {
            "name": self.name,
            "cron": self.cron,
            "class": self.job_name,
            "args": list(self.args),
            "tz": self.tz,
            "queue": self.queue,
            "missed": self.missed,
            "grace_s": self.grace_s,
        }


def make_schedule(
    cron: str,
    job_name: str,
    args: Sequence[Any] = (),
    *,
    tz: str | None = None,
    name: str | None = None,
    queue: str | None = None,
    missed: str = "run_once",
    grace_s: float = DEFAULT_GRACE_S,
) -> Schedule:
    """A checked ``Schedule`` of the job named ``job_name``; ``ConfigError`` says
    what is wrong with it."""
    if not isinstance(job_name, str) or not job_name:
        raise ConfigError("a periodic job needs a non-empty job class name")
    name = job_name if name is None else name
    where = f"periodic job {name!r}"
    if not isinstance(name, str) or not name:
        raise ConfigError(f"periodic job of {job_name}: name must be a non-empty string")
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise ConfigError(
            f"{where}: {cron!r} is not a valid cron expression (five fields "
            "'minute hour day month weekday', or six with seconds last, "
            "as in '*/5 * * * *')"
        )
    tz = "UTC" if tz is None else tz
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(
            f"{where}: unknown time zone {tz!r} (use an IANA name such as "
            "'Europe/Paris' or 'UTC')"
        ) from None
    if missed not in MISSED_POLICIES:
        raise ConfigError(f"{where}: missed must be one of {MISSED_POLICIES}, got {missed!r}")
    if isinstance(grace_s, bool) or not isinstance(grace_s, (int, float)) or grace_s < 0:
        raise ConfigError(f"{where}: grace_s must be a number of seconds >= 0, got {grace_s!r}")
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise ConfigError(f"{where}: queue must be a non-empty string, got {queue!r}")
    if isinstance(args, (str, bytes)) or not isinstance(args, (list, tuple)):
        raise ConfigError(f"{where}: args must be a list, got {type(args).__name__}")
    try:
        pl.check_args(args, where)
    except ArgumentTypeError as exc:
        raise ConfigError(str(exc)) from None
    schedule = Schedule(
        name=name, cron=cron, job_name=job_name, args=tuple(args), tz=zone.key,
        queue=queue, missed=missed, grace_s=float(grace_s),
    )
    try:
        schedule.next_after(time.time())
    except CroniterError:
        raise ConfigError(f"{where}: {cron!r} never fires (no such date)") from None
    return schedule


def from_table(table: Mapping[str, Any], where: str) -> Schedule:
    """A schedule from a ``[[roadie.periodic]]`` table of a config file."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: each periodic entry must be a table")
    unknown = sorted(set(table) - set(TABLE_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} in a periodic entry "
            f"(allowed: {', '.join(TABLE_KEYS)})"
        )
    for required in ("cron", "class"):
        if required not in table:
            raise ConfigError(f"{where}: a periodic entry needs {required!r}")
    job_name = table["class"]
    if not isinstance(job_name, str) or not job_name:
        raise ConfigError(f"{where}: 'class' must be a job name string, got {job_name!r}")
    return make_schedule(
        table["cron"], job_name, table.get("args", []), tz=table.get("tz"),
        name=table.get("name"), queue=table.get("queue"),
        missed=table.get("missed", "run_once"),
        grace_s=table.get("grace_s", DEFAULT_GRACE_S),
    )


class Schedules:
    """A set of schedules with unique names; ``default_schedules`` is the one
    ``roadie.periodic`` adds to and ``roadie run`` runs."""

    def __init__(self, schedules: Iterable[Schedule] = ()) -> None:
        self._by_name: dict[str, Schedule] = {}
        self._lock = threading.Lock()
        for schedule in schedules:
            self.add(schedule)

    def add(self, schedule: Schedule) -> Schedule:
        with self._lock:
            existing = self._by_name.get(schedule.name)
            # The same definition again (a module imported twice) is fine.
            if existing is not None and existing != schedule:
                raise ConfigError(
                    f"two periodic jobs are named {schedule.name!r} ({existing.cron!r} "
                    f"{existing.job_name} and {schedule.cron!r} {schedule.job_name}); "
                    "give each its own name=..."
                )
            self._by_name[schedule.name] = schedule
            return schedule

    def remove(self, name: str) -> None:
        with self._lock:
            self._by_name.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self._by_name.clear()

    def get(self, name: str) -> Schedule | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[Schedule]:
        with self._lock:
            return iter(sorted(self._by_name.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


#: The schedules ``roadie.periodic`` registers and ``roadie run`` runs.
default_schedules = Schedules()


