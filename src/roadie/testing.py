"""Test your jobs without a roadie process: fake mode and inline mode.

Fake mode keeps pushes in memory instead of writing them to Redis::

    import roadie.testing

    with roadie.testing.fake():
        signup(client, "ada@example.com")            # calls WelcomeEmail.perform_async(...)
        assert [j["args"] for j in WelcomeEmail.jobs] == [[42]]
        roadie.testing.drain()                       # runs them (and what they push)

Inline mode runs each job at once, in the pushing thread, when it is pushed::

    with roadie.testing.inline():
        signup(client, "ada@example.com")            # the email is sent before this returns

Both are clients (``FakeClient``, ``InlineClient``) that take the place of the
default client for the ``with`` block: a push goes through the same steps as in
production (defaults, jid, the JSON check of every argument, client middleware),
so a test catches a bad argument where it is pushed; only the final write differs.
A job runs through the server middleware, with the payload as it would come back
from Redis (JSON-decoded). Retries are not simulated: an exception in a job
propagates to the caller of ``drain`` (fake) or of ``perform_async`` (inline).

pytest fixtures: ``roadie_fake``, ``roadie_inline``, ``roadie_redis`` (see
``roadie.pytest_plugin`` and ``docs/testing.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeAlias

from roadie import current as current_client
from roadie import payload as pl
from roadie.client import Client
from roadie.config import Config
from roadie.current import using
from roadie.errors import NotInFakeMode, RoadieError
from roadie.execute import execute, instantiate, resolve
from roadie.job import Job, JobFunction
from roadie.middleware import Hooks
from roadie.payload import Payload
from roadie.registry import Registry, default_registry

__all__ = [
    "EmptyQueueError",
    "FakeClient",
    "InlineClient",
    "NotInFakeMode",
    "clear",
    "current",
    "drain",
    "fake",
    "inline",
    "jobs",
    "perform",
    "perform_one",
    "pushed_jobs",
    "using",
]

#: A job as the testing functions take it: a Job class, an @roadie.job function, a name.
JobRef: TypeAlias = "type[Job] | JobFunction[Any] | str"

#: ``drain`` stops with an error past this many jobs: a job that pushes itself
#: every time it runs would otherwise never let the test end.
MAX_DRAIN = 10_000


class EmptyQueueError(RoadieError):
    """``perform_one`` found no job to run."""


def _name(job: JobRef) -> str:
    if isinstance(job, str):
        return job
    return job.name


def perform(payload: Payload, *, registry: Registry, hooks: Hooks) -> None:
    """Run one job as a processor would (``roadie.execute``: the class by name, an
    ActiveJob payload unwrapped, server middleware, perform); what it raises
    propagates."""
    job_cls, args = resolve(payload, registry)
    queue = str(payload.get("queue") or "default")
    execute(instantiate(job_cls, payload), args, payload, queue, hooks, _run_coroutine)


def _run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    # An event loop already runs in this thread (an async test or view): the job
    # gets a loop of its own on a helper thread, and this thread waits for it.
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:
            failure.append(exc)

    helper = threading.Thread(target=run, name="roadie.testing-async")
    helper.start()
    helper.join()
    if failure:
        raise failure[0]


def _as_from_redis(payload: Payload) -> Payload:
    """The payload as a processor would read it back: JSON-encoded, then decoded."""
    return pl.decode(pl.encode(payload))


class FakeClient(Client):
    """Keeps pushed jobs in memory, by class, in push order. Thread-safe."""

    #: Jobs of ``__main__`` (a notebook, a script) can be pushed: they run here.
    runs_jobs_in_process = True

    def __init__(
        self,
        config: Config | None = None,
        *,
        hooks: Hooks | None = None,
        registry: Registry | None = None,
    ) -> None:
        super().__init__(config, hooks=hooks)
        self.registry = registry or default_registry
        self._store_lock = threading.RLock()
        self._by_class: dict[str, list[Payload]] = {}
        #: jid -> push order, so that ``jobs()`` and ``drain()`` follow it across classes.
        self._order: dict[str, int] = {}
        self._pushed = 0

    # The one step that differs from Client: keep the jobs instead of writing them.
    def _write(self, jobs: Sequence[tuple[Payload, float | None]]) -> None:
        now = pl.now()
        with self._store_lock:
            for payload, at in jobs:
                if at is None:
                    payload["enqueued_at"] = now
                    stored = _as_from_redis(payload)
                else:
                    stored = _as_from_redis(
                        {k: v for k, v in payload.items() if k != "enqueued_at"}
                    )
                    stored["at"] = at
                self._order.setdefault(str(stored["jid"]), self._pushed)
                self._pushed += 1
                self._by_class.setdefault(str(stored["class"]), []).append(stored)

    # --- reading -------------------------------------------------------------
    def jobs(self, job: JobRef | None = None, *, queue: str | None = None) -> list[Payload]:
        """Pushed jobs not yet run. For one class (and no ``queue``) this is the live
        list, so ``WelcomeEmail.jobs.clear()`` works; otherwise a new list, in push order.
        Scheduled jobs carry ``at`` (epoch seconds)."""
        with self._store_lock:
            if job is not None and queue is None:
                return self._by_class.setdefault(_name(job), [])
            if job is not None:
                found = list(self._by_class.get(_name(job), []))
            else:
                found = [p for lst in self._by_class.values() for p in lst]
                found.sort(key=self._seq)
            if queue is not None:
                found = [p for p in found if p.get("queue") == queue]
            return found

    def _seq(self, payload: Payload) -> int:
        return self._order.get(str(payload.get("jid")), -1)

    def clear(self, job: JobRef | None = None) -> None:
        """Forget the pushed jobs (of one class, or all)."""
        with self._store_lock:
            if job is None:
                for lst in self._by_class.values():
                    lst.clear()
                self._order.clear()
            else:
                self._by_class.get(_name(job), []).clear()

    # --- running -------------------------------------------------------------
    def _pop(self, job: JobRef | None) -> Payload | None:
        with self._store_lock:
            if job is not None:
                lst = self._by_class.get(_name(job))
                return lst.pop(0) if lst else None
            heads = [lst for lst in self._by_class.values() if lst]
            if not heads:
                return None
            return min(heads, key=lambda lst: self._seq(lst[0])).pop(0)

    def _run(self, payload: Payload) -> None:
        # Scheduled jobs run too (as Sidekiq's fake drain does); ``at`` is a push-time
        # key that a processor never sees.
        perform(
            {k: v for k, v in payload.items() if k != "at"},
            registry=self.registry, hooks=self.hooks,
        )

    def perform_one(self, job: JobRef | None = None) -> Payload:
        """Run the oldest pushed job (of one class, or of any); returns its payload."""
        payload = self._pop(job)
        if payload is None:
            what = f"of {_name(job)} " if job is not None else ""
            raise EmptyQueueError(f"no jobs {what}were pushed (or all have run)")
        self._run(payload)
        return payload

    def drain(self, job: JobRef | None = None) -> int:
        """Run pushed jobs (of one class, or all, oldest first) until none is left,
        including those pushed meanwhile; returns how many ran. A job that raises
        stops the drain; it is not kept."""
        ran = 0
        while True:
            payload = self._pop(job)
            if payload is None:
                return ran
            if ran >= MAX_DRAIN:
                raise RoadieError(
                    f"drain ran {MAX_DRAIN} jobs and more are pushed: does a job push "
                    f"itself every time it runs? (next: {pl.display_class(payload)})"
                )
            self._run(payload)
            ran += 1


class InlineClient(Client):
    """Runs each job at once, in the pushing thread, through the server middleware."""

    #: Jobs of ``__main__`` (a notebook, a script) can be pushed: they run here.
    runs_jobs_in_process = True

    def __init__(
        self,
        config: Config | None = None,
        *,
        hooks: Hooks | None = None,
        registry: Registry | None = None,
    ) -> None:
        super().__init__(config, hooks=hooks)
        self.registry = registry or default_registry

    def _write(self, jobs: Sequence[tuple[Payload, float | None]]) -> None:
        # Scheduled jobs run now too: a test does not wait for their time.
        for payload, _at in jobs:
            payload["enqueued_at"] = pl.now()
            perform(_as_from_redis(payload), registry=self.registry, hooks=self.hooks)


# --- switching the default client ----------------------------------------------
@contextlib.contextmanager
def fake(
    *, hooks: Hooks | None = None, registry: Registry | None = None,
    config: Config | None = None,
) -> Iterator[FakeClient]:
    """Collect pushes in memory for the block: ``with roadie.testing.fake(): ...``."""
    client = FakeClient(config, hooks=hooks, registry=registry)
    with using(client):
        yield client


@contextlib.contextmanager
def inline(
    *, hooks: Hooks | None = None, registry: Registry | None = None,
    config: Config | None = None,
) -> Iterator[InlineClient]:
    """Run jobs when pushed, for the block: ``with roadie.testing.inline(): ...``."""
    client = InlineClient(config, hooks=hooks, registry=registry)
    with using(client):
        yield client


# --- the current fake client ---------------------------------------------------
def current() -> FakeClient:
    """The fake client in use; ``NotInFakeMode`` outside ``fake()``."""
    client = current_client.configured()
    if not isinstance(client, FakeClient):
        raise NotInFakeMode(
            "pushed jobs are only kept in fake mode: use `with roadie.testing.fake():` "
            "or the roadie_fake pytest fixture"
        )
    return client


def pushed_jobs(job_name: str) -> list[Payload]:
    """``WelcomeEmail.jobs``: the live list of that class's pushed jobs."""
    return current().jobs(job_name)


def jobs(job: JobRef | None = None, *, queue: str | None = None) -> list[Payload]:
    """Jobs pushed in fake mode and not yet run (of one class or all; one queue or all)."""
    return current().jobs(job, queue=queue)


def clear(job: JobRef | None = None) -> None:
    """Forget the jobs pushed in fake mode (of one class, or all)."""
    current().clear(job)


def drain(job: JobRef | None = None) -> int:
    """Run the jobs pushed in fake mode, and those they push, until none is left."""
    return current().drain(job)


def perform_one(job: JobRef | None = None) -> Payload:
    """Run the oldest job pushed in fake mode (of one class, or of any)."""
    return current().perform_one(job)
