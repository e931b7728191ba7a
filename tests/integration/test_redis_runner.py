"""server/runner.py: JobRunner.process() on fetched jobs: decoding, lookup,
middleware, odd failures."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import redis
from integration_support import INFLIGHT, LoopThreads, loads, make_processor

from roadie.client import Client
from roadie.config import Config
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.payload import Payload
from roadie.registry import Registry
from roadie.retry import malformed_original
from roadie.server.processor import Processor


@pytest.fixture
def proc(r: redis.Redis, config: Config, registry: Registry, hooks: Hooks) -> Iterator[Processor]:
    loop_threads = LoopThreads()
    yield make_processor(r, config, registry, hooks=hooks, loop_thread=loop_threads)
    loop_threads.stop()


@pytest.fixture
def ok_job(registry: Registry) -> tuple[type[Job], list[tuple[Any, ...]]]:
    ran: list[tuple[Any, ...]] = []

    class Ok(Job, registry=registry, name="Ok"):
        def perform(self, *args: Any) -> None:
            ran.append(args)

    return Ok, ran


def run_one(proc: Processor) -> None:
    [uow] = proc.fetcher.fetch(1)
    proc.runner.process(uow)


def only(r: redis.Redis, zset: str) -> dict[str, Any]:
    [raw] = r.zrange(zset, 0, -1)
    return loads(raw)


def test_unknown_job_class_is_retried_with_a_clear_error(
    r: redis.Redis, client: Client, proc: Processor
) -> None:
    jid = client.push({"args": [1], "class": "Nope"})

    run_one(proc)

    payload = only(r, "retry")
    assert payload["jid"] == jid
    assert payload["error_message"] == "unknown job class Nope; is its module loaded with -r?"
    assert payload["error_class"] == "roadie.errors.UnknownJobError"
    assert payload["retry_count"] == 0
    assert r.exists(INFLIGHT, "dead") == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"not json{",
        b"\xff\xfe binary",
        b'{"args":[1]}',
        b'{"class":"Ok"}',
        b'{"class":"Ok","args":"1"}',
        b'{"class":"","args":[]}',
        b"[1,2]",
    ],
    ids=["not-json", "not-utf8", "no-class", "no-args", "args-not-list", "empty-class",
         "array"],
)
def test_malformed_entry_goes_to_dead_with_its_reason_and_the_processor_goes_on(
    r: redis.Redis, proc: Processor, ok_job: tuple[type[Job], list[tuple[Any, ...]]],
    client: Client, raw: bytes,
) -> None:
    ok, ran = ok_job
    r.lpush("queue:default", raw)

    run_one(proc)

    [entry] = [loads(m) for m in r.zrange("dead", 0, -1)]
    assert malformed_original(entry) == raw  # kept byte for byte
    assert entry["class"] == "roadie.MalformedEntry" and entry["queue"] == "default"
    assert entry["error_class"] == "roadie.errors.MalformedPayload"
    assert entry["error_message"]
    assert isinstance(entry["failed_at"], float) and entry["retry"] == 0
    assert r.exists(INFLIGHT, "retry", "queue:default") == 0
    assert proc.state.take_counts() == (1, 1)
    ok.perform_async(2)
    run_one(proc)
    assert ran == [(2,)]


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@pytest.mark.parametrize(
    ("exc", "error_class", "error_message"),
    [
        (BadStr(), f"{BadStr.__module__}.BadStr",
         f"<{BadStr.__module__}.BadStr whose str() raised>"),
        (SystemExit(3), "SystemExit", "3"),
        (KeyboardInterrupt(), "KeyboardInterrupt", ""),
    ],
    ids=["str-raises", "SystemExit", "KeyboardInterrupt"],
)
def test_odd_exceptions_are_recorded_as_failures(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor,
    ok_job: tuple[type[Job], list[tuple[Any, ...]]],
    exc: BaseException, error_class: str, error_message: str,
) -> None:
    class Odd(Job, registry=registry, name="Odd"):
        def perform(self) -> None:
            raise exc

    Odd.perform_async()
    run_one(proc)  # returns normally: the processor survives

    payload = only(r, "retry")
    assert (payload["error_class"], payload["error_message"]) == (error_class, error_message)
    assert r.exists(INFLIGHT) == 0
    ok, ran = ok_job
    ok.perform_async("next")
    run_one(proc)
    assert ran == [("next",)]


def test_async_perform_runs_on_the_event_loop_thread(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor
) -> None:
    ran: list[tuple[int, str]] = []

    class Coro(Job, registry=registry, name="Coro"):
        async def perform(self, x: int) -> None:
            await asyncio.sleep(0)
            ran.append((x, threading.current_thread().name))

    assert Coro.is_async
    Coro.perform_async(5)
    run_one(proc)

    assert ran == [(5, "roadie.asyncio")]
    assert r.exists(INFLIGHT, "retry") == 0


def test_async_perform_failure_is_retried(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor
) -> None:
    class CoroFail(Job, registry=registry, name="CoroFail"):
        async def perform(self) -> None:
            await asyncio.sleep(0)
            raise ValueError("async boom")

    CoroFail.perform_async()
    run_one(proc)

    payload = only(r, "retry")
    assert (payload["error_class"], payload["error_message"]) == ("ValueError", "async boom")


@pytest.mark.parametrize("exc", [SystemExit(2), KeyboardInterrupt()], ids=repr)
def test_async_perform_raising_systemexit_fails_and_the_loop_survives(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor, exc: BaseException
) -> None:
    ran: list[str] = []

    class CoroExit(Job, registry=registry, name="CoroExit"):
        async def perform(self, mode: str) -> None:
            await asyncio.sleep(0)
            if mode == "raise":
                raise exc
            ran.append(mode)

    CoroExit.perform_async("raise")
    run_one(proc)

    payload = only(r, "retry")
    assert payload["error_class"] == type(exc).__name__
    CoroExit.perform_async("next")
    run_one(proc)  # would hang if the exception had stopped the event loop
    assert ran == ["next"]


@pytest.mark.parametrize(
    "wrapper",
    ["Sidekiq::ActiveJob::Wrapper", "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"],
)
def test_activejob_payload_runs_the_wrapped_job_with_its_arguments(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor, wrapper: str
) -> None:
    ran: list[tuple[Any, ...]] = []

    class SendMail(Job, registry=registry, name="SendMail"):
        def perform(self, *args: Any) -> None:
            ran.append(args)

    aj = {
        "job_class": "SendMail", "job_id": "4b5a3c2d-0000-4000-8000-000000000000",
        "provider_job_id": None, "queue_name": "default", "priority": None,
        "arguments": [1, "x", {"k": "v"}], "executions": 0, "locale": "en",
    }
    client.push({"class": wrapper, "wrapped": "SendMail", "queue": "default", "args": [aj]})

    run_one(proc)

    assert ran == [(1, "x", {"k": "v"})]
    assert r.exists(INFLIGHT, "retry", "dead") == 0


def test_failing_activejob_keeps_its_wrapper_in_the_retry_entry(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor
) -> None:
    class Flaky(Job, registry=registry, name="Flaky"):
        def perform(self, *args: Any) -> None:
            raise RuntimeError("flaky")

    wrapper = "Sidekiq::ActiveJob::Wrapper"
    client.push({"class": wrapper, "wrapped": "Flaky", "args": [{"arguments": []}]})
    run_one(proc)

    payload = only(r, "retry")
    assert (payload["class"], payload["wrapped"]) == (wrapper, "Flaky")
    assert payload["error_message"] == "flaky"


def _recorder(events: list[Any], label: str) -> Callable[..., None]:
    def middleware(job: Job, payload: Payload, queue: str, call_next: Callable[[], None]) -> None:
        events.append((label, "before", type(job).__name__, job.jid == payload["jid"], queue))
        call_next()
        events.append((label, "after"))

    return middleware


def test_server_middleware_wraps_perform_in_registration_order(
    r: redis.Redis, client: Client, registry: Registry, hooks: Hooks, proc: Processor
) -> None:
    events: list[Any] = []

    class Traced(Job, registry=registry, name="Traced"):
        def perform(self) -> None:
            events.append(("perform", self.payload["class"]))

    hooks.server_middleware += [_recorder(events, "outer"), _recorder(events, "inner")]
    Traced.perform_async()
    run_one(proc)

    assert events == [
        ("outer", "before", "Traced", True, "default"),
        ("inner", "before", "Traced", True, "default"),
        ("perform", "Traced"),
        ("inner", "after"),
        ("outer", "after"),
    ]
    assert r.exists(INFLIGHT, "retry") == 0


def test_middleware_failure_is_a_job_failure(
    r: redis.Redis, client: Client, hooks: Hooks, proc: Processor,
    ok_job: tuple[type[Job], list[tuple[Any, ...]]],
) -> None:
    def refuse(job: Job, payload: Payload, queue: str, call_next: Callable[[], None]) -> None:
        raise PermissionError("tenant suspended")

    hooks.server_middleware.append(refuse)
    ok, ran = ok_job
    ok.perform_async(1)
    run_one(proc)

    assert ran == []
    payload = only(r, "retry")
    assert (payload["error_class"], payload["error_message"]) == (
        "PermissionError", "tenant suspended",
    )


def test_error_handlers_get_every_failed_attempt(
    r: redis.Redis, client: Client, registry: Registry, hooks: Hooks, proc: Processor
) -> None:
    seen: list[tuple[BaseException, dict[str, Any]]] = []
    hooks.error_handlers.append(lambda exc, ctx: seen.append((exc, ctx)))
    hooks.error_handlers.insert(0, lambda exc, ctx: 1 / 0)  # a broken handler is contained

    class Fails(Job, registry=registry, name="Fails", retry=False):
        def perform(self, n: int) -> None:
            raise LookupError(f"missing {n}")

    jid = Fails.perform_async(9)
    run_one(proc)

    [(exc, ctx)] = seen
    assert isinstance(exc, LookupError) and str(exc) == "missing 9"
    assert ctx["context"] == "Job raised exception"
    assert ctx["queue"] == "default"
    assert ctx["job"]["jid"] == jid and ctx["job"]["args"] == [9]
    assert r.exists(INFLIGHT, "retry", "dead") == 0


def test_running_job_is_in_the_work_state_until_it_ends(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor
) -> None:
    during: list[Any] = []

    class Look(Job, registry=registry, name="Look"):
        def perform(self) -> None:
            during.append(dict(proc.state.work))

    jid = Look.perform_async()
    raw = r.lindex("queue:default", 0)
    run_one(proc)

    [work] = during
    [entry] = work.values()
    decoded = orjson.loads(entry)
    assert decoded["queue"] == "default"
    assert decoded["payload"] == raw.decode()
    assert isinstance(decoded["run_at"], int)
    assert loads(decoded["payload"].encode())["jid"] == jid
    assert proc.state.busy == 0
