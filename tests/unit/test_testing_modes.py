"""roadie.testing: fake mode and inline mode, used directly (no Redis involved).

Every client here points at a port where nothing listens: a push that reached
for Redis would fail, so passing tests prove that fake and inline modes never do.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import roadie
import roadie.current
import roadie.testing
from roadie.errors import ArgumentTypeError, RoadieError, UnknownJobError
from roadie.middleware import Hooks
from roadie.payload import Payload
from roadie.registry import Registry
from roadie.testing import EmptyQueueError, FakeClient, InlineClient, NotInFakeMode
from unit.unit_support import NOWHERE

registry = Registry()
ran: list[tuple[str, Any]] = []


class WelcomeEmail(roadie.Job, registry=registry, name="WelcomeEmail", queue="mail"):
    def perform(self, user_id: int) -> None:
        ran.append(("WelcomeEmail", user_id))


class Signup(roadie.Job, registry=registry, name="Signup"):
    """Pushes a WelcomeEmail when it runs."""

    def perform(self, user_id: int) -> None:
        ran.append(("Signup", user_id))
        WelcomeEmail.perform_async(user_id)


class Boom(roadie.Job, registry=registry, name="Boom"):
    def perform(self, message: str) -> None:
        ran.append(("Boom", message))
        raise ValueError(message)


class Echo(roadie.Job, registry=registry, name="Echo"):
    def perform(self, *args: Any) -> None:
        ran.append(("Echo", {"args": list(args), "jid": self.jid, "payload": self.payload}))


class FetchRates(roadie.Job, registry=registry, name="FetchRates"):
    async def perform(self, currency: str) -> None:
        await asyncio.sleep(0)
        ran.append(("FetchRates", currency))


class Forever(roadie.Job, registry=registry, name="Forever"):
    def perform(self) -> None:
        Forever.perform_async()


@roadie.job(registry=registry, name="reminder")
def reminder(user_id: int) -> None:
    ran.append(("reminder", user_id))


@pytest.fixture(autouse=True)
def reset() -> Iterator[None]:
    before = roadie.current.configured()
    ran.clear()
    yield
    ran.clear()
    assert roadie.current.configured() is before, "a mode leaked out of its test"


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def fake(hooks: Hooks) -> Iterator[FakeClient]:
    with roadie.testing.fake(hooks=hooks, registry=registry, config=NOWHERE) as client:
        yield client


@pytest.fixture
def inline(hooks: Hooks) -> Iterator[InlineClient]:
    with roadie.testing.inline(hooks=hooks, registry=registry, config=NOWHERE) as client:
        yield client


# --- fake mode: collecting ----------------------------------------------------------
def test_fake_collects_pushes_as_payloads(fake: FakeClient) -> None:
    jid = WelcomeEmail.perform_async(42)
    [job] = WelcomeEmail.jobs
    assert set(job) == {"retry", "queue", "args", "class", "jid", "created_at", "enqueued_at"}
    assert (job["class"], job["args"], job["queue"], job["retry"], job["jid"]) == (
        "WelcomeEmail", [42], "mail", True, jid,
    )
    assert isinstance(job["created_at"], float)
    assert isinstance(job["enqueued_at"], float)
    assert ran == []


def test_every_kind_of_push_is_collected_in_order(fake: FakeClient) -> None:
    WelcomeEmail.perform_async(1)
    Signup.perform_in(3600, 2)
    WelcomeEmail.set(queue="critical").perform_async(3)
    WelcomeEmail.perform_bulk([[4], [5]])
    roadie.push("RubyJob", args=[6], queue="ruby")
    reminder.perform_async(7)
    everything = roadie.testing.jobs()
    assert [(j["class"], j["args"], j["queue"]) for j in everything] == [
        ("WelcomeEmail", [1], "mail"),
        ("Signup", [2], "default"),
        ("WelcomeEmail", [3], "critical"),
        ("WelcomeEmail", [4], "mail"),
        ("WelcomeEmail", [5], "mail"),
        ("RubyJob", [6], "ruby"),
        ("reminder", [7], "default"),
    ]
    [scheduled] = Signup.jobs
    # A scheduled job keeps its time in "at", as in Sidekiq's fake mode.
    assert scheduled["at"] - scheduled["created_at"] == pytest.approx(3600, abs=1)
    assert "enqueued_at" not in scheduled
    assert [j["args"] for j in WelcomeEmail.jobs] == [[1], [3], [4], [5]]
    assert [j["args"] for j in reminder.jobs] == [[7]]
    assert [j["args"] for j in roadie.testing.jobs("RubyJob")] == [[6]]
    assert [j["args"] for j in roadie.testing.jobs(queue="mail")] == [[1], [4], [5]]
    assert [j["args"] for j in roadie.testing.jobs(WelcomeEmail, queue="critical")] == [[3]]
    assert fake.jobs() == everything


def test_payloads_are_what_redis_would_give_back(fake: FakeClient) -> None:
    Echo.perform_async((1, 2), {"k": (3,)}, 1.5)
    [job] = Echo.jobs
    assert job["args"] == [[1, 2], {"k": [3]}, 1.5]


def test_a_bad_argument_raises_at_push_and_nothing_is_kept(fake: FakeClient) -> None:
    with pytest.raises(ArgumentTypeError) as info:
        WelcomeEmail.perform_async(object())
    assert "args[0]" in str(info.value)
    with pytest.raises(ArgumentTypeError):
        WelcomeEmail.perform_bulk([[1], [{"when": threading.Event()}]])
    assert roadie.testing.jobs() == []


def test_client_middleware_runs_and_may_drop(fake: FakeClient, hooks: Hooks) -> None:
    def middleware(name: str, payload: Payload, queue: str,
                   call_next: Callable[[], Payload | None]) -> Payload | None:
        if payload["args"] == [0]:
            return None
        payload["tenant"] = "acme"
        return call_next()

    hooks.client_middleware.append(middleware)
    assert WelcomeEmail.perform_async(0) is None
    assert WelcomeEmail.perform_async(1) is not None
    assert [(j["args"], j["tenant"]) for j in WelcomeEmail.jobs] == [([1], "acme")]


def test_the_list_of_a_class_is_live(fake: FakeClient) -> None:
    jobs = WelcomeEmail.jobs
    WelcomeEmail.perform_async(1)
    assert len(jobs) == 1
    WelcomeEmail.jobs.clear()
    assert WelcomeEmail.jobs == []
    assert roadie.testing.jobs() == []


def test_clear_one_class_or_all(fake: FakeClient) -> None:
    WelcomeEmail.perform_async(1)
    Signup.perform_async(2)
    roadie.testing.clear(WelcomeEmail)
    assert [j["class"] for j in roadie.testing.jobs()] == ["Signup"]
    WelcomeEmail.perform_async(3)
    roadie.testing.clear()
    assert roadie.testing.jobs() == []
    assert WelcomeEmail.jobs == []


def test_pushes_from_many_threads_are_all_kept(fake: FakeClient) -> None:
    def push(base: int) -> None:
        for i in range(100):
            WelcomeEmail.perform_async(base + i)

    threads = [threading.Thread(target=push, args=(n * 1000,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(j["args"][0] for j in WelcomeEmail.jobs) == sorted(
        n * 1000 + i for n in range(8) for i in range(100)
    )


# --- fake mode: running -------------------------------------------------------------
def test_drain_one_class(fake: FakeClient) -> None:
    WelcomeEmail.perform_async(1)
    Signup.perform_async(2)
    WelcomeEmail.perform_async(3)
    assert roadie.testing.drain(WelcomeEmail) == 2
    assert ran == [("WelcomeEmail", 1), ("WelcomeEmail", 3)]
    assert WelcomeEmail.jobs == []
    assert [j["args"] for j in Signup.jobs] == [[2]]


def test_drain_all_runs_in_push_order_with_what_jobs_push(fake: FakeClient) -> None:
    Signup.perform_async(1)
    WelcomeEmail.perform_async(2)
    Signup.perform_in(60, 3)
    assert roadie.testing.drain() == 5
    assert ran == [("Signup", 1), ("WelcomeEmail", 2), ("Signup", 3),
                   ("WelcomeEmail", 1), ("WelcomeEmail", 3)]
    assert roadie.testing.jobs() == []
    assert roadie.testing.drain() == 0


def test_a_failing_job_stops_the_drain_and_is_gone(fake: FakeClient) -> None:
    WelcomeEmail.perform_async(1)
    Boom.perform_async("bad")
    WelcomeEmail.perform_async(2)
    with pytest.raises(ValueError, match="bad"):
        roadie.testing.drain()
    assert ran == [("WelcomeEmail", 1), ("Boom", "bad")]
    assert [(j["class"], j["args"]) for j in roadie.testing.jobs()] == [("WelcomeEmail", [2])]


def test_perform_one(fake: FakeClient) -> None:
    Signup.perform_async(1)
    WelcomeEmail.perform_async(2)
    job = roadie.testing.perform_one()
    assert (job["class"], job["args"]) == ("Signup", [1])
    assert ran == [("Signup", 1)]
    # The oldest WelcomeEmail is the one pushed before Signup ran.
    job = roadie.testing.perform_one(WelcomeEmail)
    assert job["args"] == [2]
    assert [j["args"] for j in WelcomeEmail.jobs] == [[1]]
    roadie.testing.clear()
    with pytest.raises(EmptyQueueError) as info:
        roadie.testing.perform_one(WelcomeEmail)
    assert str(info.value) == "no jobs of WelcomeEmail were pushed (or all have run)"


def test_a_job_sees_its_jid_and_payload_without_at(fake: FakeClient) -> None:
    jid = Echo.perform_in(60, "x")
    roadie.testing.drain()
    [(_, seen)] = ran
    assert seen["jid"] == jid
    assert seen["args"] == ["x"]
    assert seen["payload"]["jid"] == jid
    assert "at" not in seen["payload"]


def test_server_middleware_runs_around_drained_jobs(fake: FakeClient, hooks: Hooks) -> None:
    calls: list[tuple[str, str, str]] = []

    def around(job: roadie.Job, payload: Payload, queue: str,
               call_next: Callable[[], None]) -> None:
        calls.append((type(job).__name__, payload["jid"], queue))
        call_next()

    hooks.server_middleware.append(around)
    jid = WelcomeEmail.perform_async(5)
    roadie.testing.drain()
    assert calls == [("WelcomeEmail", jid, "mail")]
    assert ran == [("WelcomeEmail", 5)]


def test_async_jobs_run_in_drain(fake: FakeClient) -> None:
    FetchRates.perform_async("EUR")
    assert roadie.testing.drain() == 1
    assert ran == [("FetchRates", "EUR")]


def test_an_unknown_class_fails_at_drain(fake: FakeClient) -> None:
    roadie.push("RubyJob", args=[1])
    with pytest.raises(UnknownJobError, match="unknown job class RubyJob"):
        roadie.testing.drain()


def test_a_job_pushing_itself_forever_is_stopped(
    fake: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(roadie.testing, "MAX_DRAIN", 50)
    Forever.perform_async()
    with pytest.raises(RoadieError, match="drain ran 50 jobs and more are pushed"):
        roadie.testing.drain()


# --- outside fake mode, switching modes ---------------------------------------------
def test_outside_fake_mode_the_lists_are_refused() -> None:
    with pytest.raises(NotInFakeMode) as info:
        WelcomeEmail.jobs
    assert "use `with roadie.testing.fake():`" in str(info.value)
    assert isinstance(info.value, AttributeError)
    assert not hasattr(WelcomeEmail, "jobs")
    for call in (roadie.testing.drain, roadie.testing.jobs, roadie.testing.clear,
                 roadie.testing.perform_one):
        with pytest.raises(NotInFakeMode):
            call()


def test_modes_restore_the_previous_client() -> None:
    real = roadie.Client(NOWHERE)
    with roadie.testing.using(real):
        with roadie.testing.fake(registry=registry) as fake:
            assert roadie.get_client() is fake
            with roadie.testing.inline(registry=registry) as inline:
                assert roadie.get_client() is inline
                WelcomeEmail.perform_async(1)
            assert ran == [("WelcomeEmail", 1)]
            assert WelcomeEmail.jobs == []
        assert roadie.get_client() is real
    with pytest.raises(ValueError), roadie.testing.fake():
        raise ValueError("the block failed")
    with pytest.raises(NotInFakeMode):
        roadie.testing.jobs()


def test_inline_mode_keeps_no_lists() -> None:
    with roadie.testing.inline(registry=registry), pytest.raises(NotInFakeMode):
        WelcomeEmail.jobs


def test_fake_by_default_uses_the_default_hooks_and_registry() -> None:
    seen: list[str] = []

    def middleware(name: str, payload: Payload, queue: str,
                   call_next: Callable[[], Payload | None]) -> Payload | None:
        seen.append(name)
        return call_next()

    roadie.hooks.client_middleware.append(middleware)
    try:
        with roadie.testing.fake() as client:
            assert client.registry is roadie.default_registry
            roadie.push("SomeJob")
    finally:
        roadie.hooks.client_middleware.remove(middleware)
    assert seen == ["SomeJob"]


# --- inline mode ----------------------------------------------------------------------
def test_inline_runs_at_push(inline: InlineClient) -> None:
    jid = Echo.perform_async({"a": (1,)})
    [(_, seen)] = ran
    assert seen["jid"] == jid
    assert seen["args"] == [{"a": [1]}]
    assert isinstance(seen["payload"]["enqueued_at"], float)


def test_inline_runs_scheduled_and_bulk_and_nested_pushes_at_once(inline: InlineClient) -> None:
    Signup.perform_in(3600, 1)
    WelcomeEmail.perform_bulk([[2], [3]])
    reminder.perform_async(4)
    assert ran == [("Signup", 1), ("WelcomeEmail", 1), ("WelcomeEmail", 2),
                   ("WelcomeEmail", 3), ("reminder", 4)]


def test_inline_goes_through_both_middleware_chains(inline: InlineClient, hooks: Hooks) -> None:
    order: list[str] = []

    def client_mw(name: str, payload: Payload, queue: str,
                  call_next: Callable[[], Payload | None]) -> Payload | None:
        order.append("client")
        payload["tenant"] = "acme"
        return call_next()

    def server_mw(job: roadie.Job, payload: Payload, queue: str,
                  call_next: Callable[[], None]) -> None:
        order.append(f"server:{payload['tenant']}")
        call_next()
        order.append("server:after")

    hooks.client_middleware.append(client_mw)
    hooks.server_middleware.append(server_mw)
    WelcomeEmail.perform_async(1)
    assert order == ["client", "server:acme", "server:after"]
    assert ran == [("WelcomeEmail", 1)]


def test_inline_errors_reach_the_pusher(inline: InlineClient) -> None:
    with pytest.raises(ValueError, match="bad"):
        Boom.perform_async("bad")
    with pytest.raises(ArgumentTypeError):
        Boom.perform_async({1: "not a str key"})
    assert ran == [("Boom", "bad")]


def test_inline_async_job_from_sync_and_from_a_running_loop(inline: InlineClient) -> None:
    FetchRates.perform_async("EUR")

    async def view() -> None:
        FetchRates.perform_async("USD")

    asyncio.run(view())
    assert ran == [("FetchRates", "EUR"), ("FetchRates", "USD")]


# --- one execute step with the server -------------------------------------------------
ACTIVEJOB = {
    "class": "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper",
    "wrapped": "WelcomeEmail",
    "args": [{"job_class": "WelcomeEmail", "job_id": "b6a7", "arguments": [7]}],
}


def test_fake_drain_runs_an_activejob_payload_as_the_server_does(fake: FakeClient) -> None:
    # A Rails app's push, as roadie run unwraps it: the wrapped class, its arguments.
    roadie.push(ACTIVEJOB["class"], args=ACTIVEJOB["args"], wrapped="WelcomeEmail",
                queue="mail")

    assert roadie.testing.drain() == 1
    assert ran == [("WelcomeEmail", 7)]


def test_inline_runs_an_activejob_payload_as_the_server_does(inline: InlineClient) -> None:
    roadie.push(ACTIVEJOB["class"], args=ACTIVEJOB["args"], wrapped="WelcomeEmail")

    assert ran == [("WelcomeEmail", 7)]
