"""Running one fetched job: decode it, run it (``roadie.execute``), log and count it,
and hand what it led to to ``outcome.Outcomes`` (acknowledge, retry or bury, through
Redis outages). A ``Processor`` has one ``JobRunner``; its ``Supply`` says which job
comes next."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from roadie import payload as pl
from roadie.config import Config
from roadie.errors import MalformedPayload, Shutdown, UnknownJobError
from roadie.execute import execute, instantiate, resolve
from roadie.job import Job
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.retry import safe_message
from roadie.server.asyncloop import LoopThread
from roadie.server.fetch import UnitOfWork
from roadie.server.outcome import Outcomes
from roadie.server.pace import Pace
from roadie.server.state import State

log = logging.getLogger("roadie")
T = TypeVar("T")

_forked = False


def _note_fork() -> None:
    global _forked
    _forked = True


# A job may fork (multiprocessing, a daemonizing library). Its child, if it returns
# from ``perform`` instead of exiting, is a copy of this process holding its jobs and
# its Redis connections: it must not write an outcome or fetch (it ran jobs twice, on
# the parent's socket). The flag makes the check free in a process that never forked.
os.register_at_fork(after_in_child=_note_fork)


def exit_if_forked_child(owner_pid: int) -> None:
    """In a child forked by a job (not the process that runs it), exit at once."""
    if _forked and os.getpid() != owner_pid:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed or broken stream: exit anyway
                stream.flush()
        os._exit(0)




def _metrics_class(payload: pl.Payload) -> str:
    """The class name execution metrics use: ``wrapped`` if present, as Sidekiq 7."""
    wrapped = payload.get("wrapped")
    return wrapped if isinstance(wrapped, str) and wrapped else str(payload.get("class"))


def _log_context(payload: pl.Payload) -> dict[str, Any]:
    ctx: dict[str, Any] = {"class": pl.display_class(payload), "jid": payload.get("jid")}
    tags = payload.get("tags")
    if tags:
        ctx["tags"] = tags
    return ctx


@dataclass(slots=True)
class Run:
    """One job between its start and its outcome."""

    uow: UnitOfWork
    queue: str
    payload: pl.Payload
    #: Its log context, when INFO is on (else built only if it fails).
    ctx: dict[str, Any] | None
    t0: float


@dataclass(slots=True)
class Failed:
    """An async job that raised on the event loop; its processor thread writes the
    outcome (a retry or the dead set, through Redis outages)."""

    run: Run
    exc: BaseException
    job_cls: type[Job]


class JobRunner:
    """Runs one processor's jobs, one at a time, and hands each outcome to
    ``outcomes``; the processor decides which job comes next."""

    def __init__(
        self,
        *,
        config: Config,
        keys: Keys,
        state: State,
        hooks: Hooks,
        registry: Registry,
        outcomes: Outcomes,
        loop_thread: Callable[[], LoopThread],
        pace: Pace,
        abandoned: threading.Event,
    ) -> None:
        self.config = config
        self.keys = keys
        self.state = state
        self.hooks = hooks
        self.registry = registry
        self.outcomes = outcomes
        self.loop_thread = loop_thread
        #: Where each run's duration goes (it sizes the processor's next fetch).
        self.pace = pace
        #: Set by the manager when it has pushed the running job back at a hard
        #: stop: no outcome is written for it then.
        self.abandoned = abandoned
        #: The processor thread's id in logs and the work hash (set when it starts).
        self.tid = ""
        #: The process that runs these jobs (a job's forked child is another).
        self.pid = os.getpid()

    # --- one job ---------------------------------------------------------------
    def process(self, uow: UnitOfWork, *, defer_ack: bool = False,
                payload: pl.Payload | None = None) -> UnitOfWork | None:
        """Run one job and write its outcome.

        With ``defer_ack`` a success is not acknowledged here: the job is returned
        for the caller to acknowledge together with its next fetch. ``payload`` is
        the job's, when the caller has decoded it already.
        """
        queue = uow.queue_name(self.keys)
        self.state.start_work(self.tid, queue, uow.raw)
        t0 = time.monotonic()
        try:
            return self._process(uow, queue, defer_ack, payload)
        finally:
            self.pace.timed(t0)
            self.state.end_work(self.tid)

    async def run_async(self, uow: UnitOfWork, payload: pl.Payload, job_cls: type[Job],
                        args: list[Any]) -> Failed | UnitOfWork | None:
        """Run an ``async def perform`` job as a task of the event loop, with no
        thread hand-off. Returns ``uow`` after a success, for the caller to
        acknowledge with its next fetch; a failure, its work entry still open, for
        the processor thread to write (``finish_failed``); None if abandoned.

        Only jobs without server middleware come here: a middleware wraps a
        synchronous call, so those jobs still run through ``execute``.
        """
        queue = uow.queue_name(self.keys)
        self.state.start_work(self.tid, queue, uow.raw)
        run = self._started(uow, queue, payload, tid=self.tid)
        try:
            await instantiate(job_cls, payload).perform(*args)
        except BaseException as exc:  # a cancellation too: see Processor._on_loop
            exit_if_forked_child(self.pid)
            return Failed(run, exc, job_cls)
        finally:
            self.pace.timed(run.t0)
        exit_if_forked_child(self.pid)
        done = self._succeeded(run, defer_ack=True)
        self.state.end_work(self.tid)
        return done

    def finish_failed(self, failed: Failed) -> None:
        try:
            self._failed(failed.run, failed.exc, failed.job_cls)
        finally:
            self.state.end_work(self.tid)

    def for_loop(
        self, uow: UnitOfWork
    ) -> tuple[pl.Payload | None, tuple[type[Job], list[Any]] | None]:
        """The job's payload (None if malformed: ``process`` reports it), and its
        class and arguments if it is to run on the event loop (``loop_ready``)."""
        try:
            payload = pl.decode(uow.raw)
        except MalformedPayload:
            return None, None
        return payload, self.loop_ready(payload)

    def loop_ready(self, payload: pl.Payload) -> tuple[type[Job], list[Any]] | None:
        """The class and arguments of a job to run on the event loop: an ``async
        def perform``, no server middleware; None for every other job."""
        if self.hooks.server_middleware:
            return None
        try:
            job_cls, args = resolve(payload, self.registry)
        except Exception:  # the usual path reports it
            return None
        return (job_cls, args) if job_cls.is_async else None

    def _process(self, uow: UnitOfWork, queue: str, defer_ack: bool,
                 payload: pl.Payload | None = None) -> UnitOfWork | None:
        if payload is None:
            try:
                payload = pl.decode(uow.raw)
            except MalformedPayload as exc:
                self.outcomes.malformed(uow, str(exc), queue)
                self.state.count(failed=True)
                return None
        run = self._started(uow, queue, payload)
        job_cls: type[Job] | None = None
        try:
            job_cls, args = resolve(payload, self.registry)
            execute(instantiate(job_cls, payload), args, payload, queue, self.hooks,
                    self._run_coroutine)
        except BaseException as exc:
            exit_if_forked_child(self.pid)
            self._failed(run, exc, job_cls)
            return None
        exit_if_forked_child(self.pid)
        return self._succeeded(run, defer_ack)

    def _started(self, uow: UnitOfWork, queue: str, payload: pl.Payload,
                 tid: str | None = None) -> Run:
        # The log context is built only when something is logged (INFO, or a failure).
        ctx = _log_context(payload) if log.isEnabledFor(logging.INFO) else None
        if ctx is not None:
            if tid is not None:  # logged from the event loop's thread: name the processor
                ctx["tid"] = tid
            log.info("start", extra={"roadie": ctx})
        return Run(uow, queue, payload, ctx, time.monotonic())

    def _failed(self, run: Run, exc: BaseException, job_cls: type[Job] | None) -> None:
        payload = run.payload
        if isinstance(exc, Shutdown) and self.abandoned.is_set():
            # The launcher pushed this job back and ended its run: no outcome.
            log.warning("%s %s interrupted by the shutdown; it was pushed back",
                        pl.display_class(payload), payload.get("jid"))
            return
        ctx = _log_context(payload) if run.ctx is None else run.ctx
        ctx["elapsed"] = f"{time.monotonic() - run.t0:.3f}"
        log.info("fail", extra={"roadie": ctx})
        # An unknown class is a deployment matter: its traceback would only be noise.
        trace = None if isinstance(exc, UnknownJobError) else exc
        log.warning("%s: %s", type(exc).__name__, safe_message(exc), exc_info=trace,
                    extra={"roadie": ctx})
        self.hooks.report_error(exc, {"context": "Job raised exception",
                                      "job": payload, "queue": run.queue})
        self.outcomes.failed(run.uow, payload, exc, run.queue, job_cls)
        self.state.count(failed=True, job_class=_metrics_class(payload))

    def _succeeded(self, run: Run, defer_ack: bool) -> UnitOfWork | None:
        elapsed = time.monotonic() - run.t0
        if run.ctx is not None:
            run.ctx["elapsed"] = f"{elapsed:.3f}"
            log.info("done", extra={"roadie": run.ctx})
        self.state.count(failed=False, job_class=_metrics_class(run.payload),
                         ms=int(elapsed * 1000))
        if defer_ack and not self.abandoned.is_set():
            return run.uow
        self.outcomes.succeeded(run.uow)
        return None

    def _run_coroutine(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """An ``async def perform`` with server middleware, from this thread: on the
        process's event loop, this thread waiting for it."""
        return self.loop_thread().run(coroutine)
