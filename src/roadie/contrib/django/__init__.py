"""Django integration.

::

    # settings.py
    INSTALLED_APPS = [..., "roadie.contrib.django"]
    ROADIE = {"REDIS_URL": "redis://127.0.0.1:6379/0", "QUEUES": ["mail,2", "default"]}

    # accounts/jobs.py  (found by ``manage.py roadie run`` in every installed app)
    from roadie.contrib.django import Job

    class WelcomeEmail(Job, queue="mail"):
        def perform(self, user_id: int) -> None:
            user = User.objects.get(id=user_id)
            ...

    # accounts/views.py
    @transaction.atomic
    def signup(request):
        user = User.objects.create(...)
        WelcomeEmail.perform_async_on_commit(user.id)   # pushed once the row is committed
        ...

    $ python manage.py roadie run -c 5

A job pushed with ``perform_async`` inside a transaction can run before the
transaction commits: the job then cannot find its row (or reads the old one). The
``*_on_commit`` functions push at commit, through ``transaction.on_commit``, and push
nothing if the transaction rolls back. Arguments are checked when called, so a bad
argument raises in the view, not at commit.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

import roadie
from roadie import payload as pl
from roadie.client import get_client, named_item
from roadie.job import JobFunction, JobSetter
from roadie.pushcheck import to_epoch, to_seconds

__all__ = [
    "Job",
    "on_commit",
    "perform_async_on_commit",
    "perform_at_on_commit",
    "perform_in_on_commit",
    "push_on_commit",
]

JobLike = type[roadie.Job] | JobFunction[Any] | JobSetter


def on_commit(fn: Callable[[], object], *, using: str | None = None) -> None:
    """Run ``fn`` once the current transaction commits (at once outside a transaction);
    never if it rolls back. Django's ``transaction.on_commit``."""
    transaction.on_commit(fn, using=using)


def push_on_commit(
    job_class: str,
    args: Sequence[Any] = (),
    *,
    queue: str | None = None,
    at: float | None = None,
    using: str | None = None,
    **options: Any,
) -> str:
    """``roadie.push`` at commit. Returns the jid the job will have."""
    return _push_on_commit(named_item(job_class, args, queue, at, options), using)


def perform_async_on_commit(job: JobLike, *args: Any, using: str | None = None) -> str:
    """``job.perform_async(*args)`` at commit. Returns the jid the job will have."""
    return _push_on_commit(_job_item(_setter(job), args, None), using)


def perform_in_on_commit(
    job: JobLike, interval: float | timedelta, *args: Any, using: str | None = None
) -> str:
    """``job.perform_in(interval, *args)`` at commit; the interval counts from now."""
    seconds = to_seconds(interval, f"{_setter(job).name}.perform_in")
    return perform_at_on_commit(job, time.time() + seconds, *args, using=using)


def perform_at_on_commit(
    job: JobLike, when: datetime | float, *args: Any, using: str | None = None
) -> str:
    """``job.perform_at(when, *args)`` at commit."""
    setter = _setter(job)
    return _push_on_commit(_job_item(setter, args, to_epoch(when, f"{setter.name}.perform_at")),
                           using)


class Job(roadie.Job, abstract=True):
    """A ``roadie.Job`` with push-at-commit class methods."""

    @classmethod
    def perform_async_on_commit(cls, *args: Any, using: str | None = None) -> str:
        return perform_async_on_commit(cls, *args, using=using)

    @classmethod
    def perform_in_on_commit(
        cls, interval: float | timedelta, *args: Any, using: str | None = None
    ) -> str:
        return perform_in_on_commit(cls, interval, *args, using=using)

    @classmethod
    def perform_at_on_commit(
        cls, when: datetime | float, *args: Any, using: str | None = None
    ) -> str:
        return perform_at_on_commit(cls, when, *args, using=using)


def _setter(job: JobLike) -> JobSetter:
    return job if isinstance(job, JobSetter) else job.set()


def _job_item(setter: JobSetter, args: Sequence[Any], at: float | None) -> dict[str, Any]:
    # Checked now (arguments against perform, a job of __main__), not at commit.
    item = setter.item(args, client=get_client())
    if at is not None and at > time.time():
        item["at"] = at
    return item


def _push_on_commit(item: dict[str, Any], using: str | None) -> str:
    client = get_client()
    # Everything that can be wrong with the job is found now, in the caller's code:
    # an exception inside an on_commit callback comes after the commit, out of context.
    payload, _ = client.normalize(item)
    pl.check_args(payload["args"], pl.display_class(payload))
    item["jid"] = payload["jid"]
    transaction.on_commit(functools.partial(client.push, item), using=using)
    return str(payload["jid"])
