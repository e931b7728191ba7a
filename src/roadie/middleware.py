"""Middleware chains, error and death handlers, lifecycle hooks.

Client middleware runs around every push (including the poller's pushes of due
scheduled and retry jobs)::

    def add_tenant(job_name, payload, queue, call_next):
        payload["tenant"] = current_tenant()
        return call_next()          # return None instead to drop the job

Server middleware runs around every execution::

    def timing(job, payload, queue, call_next):
        t0 = time.monotonic()
        try:
            call_next()
        finally:
            record(payload["class"], time.monotonic() - t0)

``job`` is the Job instance about to run. Register them on ``roadie.hooks``
(the default ``Hooks``), or on your own ``Hooks`` passed to a ``Client`` or process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from roadie.payload import Payload

if TYPE_CHECKING:
    from roadie.job import Job

log = logging.getLogger("roadie")

LIFECYCLE_EVENTS = ("startup", "quiet", "shutdown", "heartbeat")


class ClientMiddleware(Protocol):
    def __call__(
        self,
        job_name: str,
        payload: Payload,
        queue: str,
        call_next: Callable[[], Payload | None],
        /,
    ) -> Payload | None: ...


class ServerMiddleware(Protocol):
    def __call__(
        self, job: Job, payload: Payload, queue: str, call_next: Callable[[], None], /
    ) -> None: ...


#: ``(exception, context)``; context has ``job`` (the payload) and ``queue``.
ErrorHandler = Callable[[BaseException, dict[str, Any]], None]
#: ``(payload, exception)``, called when a job dies (retries exhausted, retry=False).
DeathHandler = Callable[[Payload, BaseException], None]
LifecycleHook = Callable[[], None]


class Hooks:
    """Middleware, handlers and lifecycle hooks of a client or process."""

    def __init__(self) -> None:
        self.client_middleware: list[ClientMiddleware] = []
        self.server_middleware: list[ServerMiddleware] = []
        self.error_handlers: list[ErrorHandler] = []
        self.death_handlers: list[DeathHandler] = []
        self.lifecycle: dict[str, list[LifecycleHook]] = {e: [] for e in LIFECYCLE_EVENTS}

    def on(self, event: str) -> Callable[[LifecycleHook], LifecycleHook]:
        """Decorator: ``@roadie.hooks.on("startup")``."""
        if event not in self.lifecycle:
            raise ValueError(f"unknown lifecycle event {event!r}; one of {LIFECYCLE_EVENTS}")

        def register(fn: LifecycleHook) -> LifecycleHook:
            self.lifecycle[event].append(fn)
            return fn

        return register

    def fire(self, event: str) -> None:
        for fn in self.lifecycle[event]:
            try:
                fn()
            except Exception:
                log.exception("lifecycle hook %r for %r raised", fn, event)

    def run_client(
        self, job_name: str, payload: Payload, queue: str
    ) -> Payload | None:
        chain = self.client_middleware
        if not chain:
            return payload

        def step(i: int) -> Payload | None:
            if i == len(chain):
                return payload
            return chain[i](job_name, payload, queue, lambda: step(i + 1))

        return step(0)

    def run_server(
        self, job: Job, payload: Payload, queue: str, final: Callable[[], None]
    ) -> None:
        chain = self.server_middleware
        if not chain:
            final()
            return

        def step(i: int) -> None:
            if i == len(chain):
                final()
            else:
                chain[i](job, payload, queue, lambda: step(i + 1))

        step(0)

    def report_error(self, exc: BaseException, context: dict[str, Any]) -> None:
        for handler in self.error_handlers:
            try:
                handler(exc, context)
            except Exception:
                log.exception("error handler %r raised", handler)

    def report_death(self, payload: Payload, exc: BaseException) -> None:
        for handler in self.death_handlers:
            try:
                handler(payload, exc)
            except Exception:
                log.exception("death handler %r raised", handler)


#: The default hooks used by ``roadie.push``, Job classes and ``roadie run``.
hooks = Hooks()
