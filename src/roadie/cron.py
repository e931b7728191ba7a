"""Periodic jobs: push a job on a cron schedule, once per tick for the whole cluster.

::

    import roadie

    roadie.periodic("*/5 * * * *", SyncRates, args=["EUR"], tz="Europe/Paris")

or in ``roadie.toml``::

    [[roadie.periodic]]
    cron = "0 3 * * *"
    class = "myapp.jobs.NightlyReport"
    tz = "Europe/Paris"

This module takes the job as a Job class or an ``@roadie.job`` function; the
schedules themselves are plain data that know jobs by name only (``schedule.py``:
cron expressions, time zones, ``[[roadie.periodic]]`` tables).

Every ``roadie run`` process runs a scheduler thread (``server/periodic.py``); each
tick is pushed once cluster-wide by ``lua/periodic_tick.lua``. What happens to ticks
missed while no process ran is the schedule's ``missed`` policy (``docs/periodic.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from roadie import schedule as plain
from roadie.errors import ConfigError
from roadie.schedule import (
    DEFAULT_GRACE_S,
    MISSED_POLICIES,
    TABLE_KEYS,
    Schedule,
    Schedules,
    default_schedules,
    from_table,
)

if TYPE_CHECKING:
    from roadie.job import Job, JobFunction

__all__ = [
    "DEFAULT_GRACE_S",
    "MISSED_POLICIES",
    "TABLE_KEYS",
    "Schedule",
    "Schedules",
    "default_schedules",
    "from_table",
    "make_schedule",
    "periodic",
]


def _job_name(job: type[Job] | JobFunction[Any] | str) -> str:
    if isinstance(job, str):
        if not job:
            raise ConfigError("a periodic job needs a non-empty job class name")
        return job
    name = getattr(job, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"periodic: {job!r} is not a roadie.Job class, an @roadie.job function "
            "or a job name"
        )
    return name


def make_schedule(
    cron: str,
    job: type[Job] | JobFunction[Any] | str,
    args: Sequence[Any] = (),
    *,
    tz: str | None = None,
    name: str | None = None,
    queue: str | None = None,
    missed: str = "run_once",
    grace_s: float = DEFAULT_GRACE_S,
) -> Schedule:
    """A checked ``Schedule`` of ``job`` (a Job class, an ``@roadie.job`` function or
    a job name); ``ConfigError`` says what is wrong with it."""
    return plain.make_schedule(
        cron, _job_name(job), args, tz=tz, name=name, queue=queue, missed=missed,
        grace_s=grace_s,
    )


def periodic(
    cron: str,
    job: type[Job] | JobFunction[Any] | str,
    args: Sequence[Any] = (),
    *,
    tz: str | None = None,
    name: str | None = None,
    queue: str | None = None,
    missed: str = "run_once",
    grace_s: float = DEFAULT_GRACE_S,
    schedules: Schedules | None = None,
) -> Schedule:
    """Push ``job`` with ``args`` at every tick of ``cron``, once for the cluster.

    ``job`` is a Job class, an ``@roadie.job`` function or a job name (a job of
    another codebase). ``name`` defaults to the job's name; give one to schedule
    the same job twice. ``missed`` is ``"run_once"`` (default) or ``"skip"``.
    Call it in a module that ``roadie run -r`` loads.
    """
    schedule = make_schedule(
        cron, job, args, tz=tz, name=name, queue=queue, missed=missed, grace_s=grace_s
    )
    return (default_schedules if schedules is None else schedules).add(schedule)
