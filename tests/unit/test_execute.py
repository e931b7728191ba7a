"""execute.py: one job's run, the same in roadie run and in test mode. ``resolve``
finds the class in the registry only (unwrapping an ActiveJob payload), ``instantiate``
gives it its jid and payload, ``execute`` runs the server middleware around
``perform`` and hands an ``async def perform`` to the caller's loop (no Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from roadie.errors import UnknownJobError
from roadie.execute import execute, instantiate, resolve
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.payload import Payload
from roadie.registry import Registry

ACTIVEJOB = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"


def registered(reg: Registry, *, is_async: bool = False) -> type[Job]:
    """A job class named SendMail in ``reg`` recording its runs in ``ran``."""
    if is_async:
        class AsyncMail(Job, registry=reg, name="SendMail"):
            ran: list[Any] = []

            async def perform(self, *args: Any) -> None:
                await asyncio.sleep(0)
                self.ran.append(args)

        return AsyncMail

    class SendMail(Job, registry=reg, name="SendMail"):
        ran: list[Any] = []

        def perform(self, *args: Any) -> None:
            self.ran.append(args)

    return SendMail


# --- resolve ---------------------------------------------------------------------
def test_resolve_gives_the_registered_class_and_the_arguments(reg: Registry) -> None:
    cls = registered(reg)
    args = [1, "x"]
    assert resolve({"class": "SendMail", "args": args}, reg) == (cls, args)


def test_resolve_never_imports_what_a_payload_names(reg: Registry) -> None:
    for name in ("os.system", "builtins.eval", "roadie.job.Job"):
        with pytest.raises(UnknownJobError, match=f"unknown job class {name}"):
            resolve({"class": name, "args": []}, reg)


@pytest.mark.parametrize("wrapper", [ACTIVEJOB, "Sidekiq::ActiveJob::Wrapper"])
def test_an_activejob_payload_runs_the_wrapped_class_with_its_own_arguments(
    reg: Registry, wrapper: str
) -> None:
    cls = registered(reg)
    payload = {"class": wrapper, "wrapped": "SendMail",
               "args": [{"job_class": "SendMail", "arguments": [7, {"k": "v"}]}]}
    assert resolve(payload, reg) == (cls, [7, {"k": "v"}])


def test_an_activejob_payload_without_a_list_of_arguments_keeps_its_args(
    reg: Registry,
) -> None:
    cls = registered(reg)
    odd = [{"job_class": "SendMail", "arguments": "not a list"}]
    assert resolve({"class": ACTIVEJOB, "wrapped": "SendMail", "args": odd}, reg) == (cls, odd)
    assert resolve({"class": ACTIVEJOB, "wrapped": "SendMail", "args": []}, reg) == (cls, [])


def test_wrapped_is_read_only_for_an_activejob_wrapper(reg: Registry) -> None:
    registered(reg)
    # Another class carrying "wrapped" runs as itself, and a wrapper whose "wrapped"
    # is not a string is looked up by its own name.
    with pytest.raises(UnknownJobError, match="unknown job class Other"):
        resolve({"class": "Other", "wrapped": "SendMail", "args": []}, reg)
    with pytest.raises(UnknownJobError, match=f"unknown job class {ACTIVEJOB}"):
        resolve({"class": ACTIVEJOB, "wrapped": 5, "args": []}, reg)


# --- instantiate -------------------------------------------------------------------
def test_instantiate_makes_a_new_job_with_its_jid_and_payload(reg: Registry) -> None:
    cls = registered(reg)
    payload: Payload = {"class": "SendMail", "args": [], "jid": "abc123"}

    first, second = instantiate(cls, payload), instantiate(cls, payload)

    assert isinstance(first, cls) and first is not second
    assert first.jid == "abc123" and first.payload is payload
    assert instantiate(cls, {"class": "SendMail", "args": []}).jid == ""


# --- execute -----------------------------------------------------------------------
def no_loop(coroutine: Coroutine[Any, Any, Any]) -> Any:
    coroutine.close()
    raise AssertionError("a sync perform was handed to the event loop")


def recorder(events: list[Any], tag: str) -> Callable[..., None]:
    def middleware(job: Job, payload: Payload, queue: str, call_next: Callable[[], None]
                   ) -> None:
        events.append((tag, type(job).__name__, payload["jid"], queue))
        call_next()
        events.append((tag, "after"))

    return middleware


def test_execute_runs_perform_inside_the_server_middleware_in_order(reg: Registry) -> None:
    cls = registered(reg)
    events: list[Any] = []
    hooks = Hooks()
    hooks.server_middleware += [recorder(events, "outer"), recorder(events, "inner")]
    payload: Payload = {"class": "SendMail", "args": [1], "jid": "j1"}

    execute(instantiate(cls, payload), [1], payload, "mail", hooks, no_loop)

    assert events == [("outer", "SendMail", "j1", "mail"), ("inner", "SendMail", "j1", "mail"),
                      ("inner", "after"), ("outer", "after")]
    assert cls.ran == [(1,)]  # type: ignore[attr-defined]


def test_an_async_perform_goes_to_the_callers_loop(reg: Registry) -> None:
    cls = registered(reg, is_async=True)
    handed: list[Coroutine[Any, Any, Any]] = []

    def run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
        handed.append(coroutine)
        return asyncio.run(coroutine)

    payload: Payload = {"class": "SendMail", "args": ["a"], "jid": "j2"}
    execute(instantiate(cls, payload), ["a"], payload, "default", Hooks(), run_coroutine)

    assert len(handed) == 1 and cls.ran == [("a",)]  # type: ignore[attr-defined]


def test_what_perform_raises_propagates_through_the_middleware(reg: Registry) -> None:
    class Fails(Job, registry=reg, name="Fails"):
        def perform(self) -> None:
            raise LookupError("missing")

    seen: list[str] = []

    def watcher(job: Job, payload: Payload, queue: str, call_next: Callable[[], None]) -> None:
        try:
            call_next()
        except LookupError as exc:
            seen.append(str(exc))
            raise

    hooks = Hooks()
    hooks.server_middleware.append(watcher)
    payload: Payload = {"class": "Fails", "args": [], "jid": "j3"}
    with pytest.raises(LookupError, match="missing"):
        execute(instantiate(Fails, payload), [], payload, "default", hooks, no_loop)
    assert seen == ["missing"]
