"""One job's execution, the same in ``roadie run`` and in test mode.

A payload (decoded from its queue entry, or kept in memory by the fake client) is
run in three steps, each a function here:

1. ``resolve``: the job class by name, from the registry only (a payload never causes
   an import), and the arguments. An ActiveJob payload pushed by Rails names its
   wrapper class and carries the job's own class in ``wrapped`` and its arguments in
   ``args[0]["arguments"]``: it runs that class with those arguments.
2. ``instantiate``: a new instance of the class, with ``jid`` and ``payload`` set.
3. ``execute``: the server middleware around ``perform``; an ``async def perform``
   goes to ``run_coroutine``, which the caller supplies (the process's event loop, or
   ``asyncio.run`` in test mode).

The caller writes the outcome (``server.runner`` writes it to Redis; the testing
clients raise or record it): what a job's run leads to is not decided here.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from roadie import payload as pl
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.registry import Registry

#: Runs an ``async def perform`` coroutine to its end, in the caller's way.
RunCoroutine = Callable[[Coroutine[Any, Any, Any]], Any]


def resolve(payload: pl.Payload, registry: Registry) -> tuple[type[Job], list[Any]]:
    """The job class and the arguments of ``payload``; ``UnknownJobError`` when no
    registered class has its name."""
    name = payload["class"]
    args: list[Any] = payload["args"]
    wrapped = payload.get("wrapped")
    if name in pl.ACTIVEJOB_WRAPPERS and isinstance(wrapped, str):
        name = wrapped
        if args and isinstance(args[0], dict) and isinstance(args[0].get("arguments"), list):
            args = args[0]["arguments"]
    return registry.get(name), args


def instantiate(job_cls: type[Job], payload: pl.Payload) -> Job:
    job = job_cls()
    job.jid = str(payload.get("jid", ""))
    job.payload = payload
    return job


def execute(job: Job, args: list[Any], payload: pl.Payload, queue: str, hooks: Hooks,
            run_coroutine: RunCoroutine) -> None:
    """Server middleware, then ``perform(*args)``; what it raises propagates."""
    hooks.run_server(job, payload, queue, lambda: perform(job, args, run_coroutine))


def perform(job: Job, args: list[Any], run_coroutine: RunCoroutine) -> None:
    if type(job).is_async:
        run_coroutine(job.perform(*args))
    else:
        job.perform(*args)
