"""Client push: the exact Redis writes of SIDEKIQ-WIRE.md section 4."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from integration_support import CommandLog, compact, loads

import roadie
import roadie.client
import roadie.testing
from roadie import aio
from roadie.client import Client
from roadie.config import Config
from roadie.errors import ArgumentTypeError, JobDefinitionError
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.payload import Payload
from roadie.registry import Registry

JID = re.compile(r"^[0-9a-f]{24}$")


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def client(config: Config, hooks: Hooks, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """A client on the test Redis, also made the default one (for perform_async)."""
    c = Client(config, hooks=hooks)
    with roadie.current.using(c):
        yield c


@pytest.fixture
def registry() -> Registry:
    return Registry()


def test_push_writes_sadd_queues_and_lpush_in_one_transaction(
    r: redis.Redis, client: Client
) -> None:
    with CommandLog(r) as log:
        jid = client.push({"class": "HardJob", "args": [1]})
        commands = log.commands()

    assert [c[0] for c in commands] == ["MULTI", "SADD", "LPUSH", "EXEC"]
    assert commands[1] == ["SADD", "queues", "default"]
    assert commands[2][1] == "queue:default"
    assert set(r.keys()) == {b"queues", b"queue:default"}
    assert r.smembers("queues") == {b"default"}
    assert jid is not None and jid in commands[2][2]


def test_push_payload_fields_and_key_order(r: redis.Redis, client: Client) -> None:
    t0 = time.time()
    jid = client.push({"args": [1, "two", {"three": 3.5}, [True, None]], "class": "HardJob"})
    t1 = time.time()

    raw = r.lindex("queue:default", 0)
    assert raw is not None and r.llen("queue:default") == 1
    payload = loads(raw)
    assert list(payload) == [
        "retry", "queue", "args", "class", "jid", "created_at", "enqueued_at",
    ]
    assert payload["retry"] is True
    assert payload["queue"] == "default"
    assert payload["args"] == [1, "two", {"three": 3.5}, [True, None]]
    assert payload["class"] == "HardJob"
    assert payload["jid"] == jid and JID.match(jid)
    assert isinstance(payload["created_at"], float)
    assert isinstance(payload["enqueued_at"], float)
    assert t0 <= payload["created_at"] <= payload["enqueued_at"] <= t1
    assert raw == compact(payload)  # compact JSON, as Ruby's JSON.generate writes


def test_job_options_sit_between_queue_and_args(
    r: redis.Redis, client: Client, registry: Registry
) -> None:
    class Hard(Job, registry=registry, name="HardJob", queue="hard", retry=3, backtrace=5):
        def perform(self, *args: Any) -> None:
            pass

    Hard.perform_async("x")

    payload = loads(r.rpop("queue:hard"))
    assert list(payload) == [
        "retry", "queue", "backtrace", "args", "class", "jid", "created_at", "enqueued_at",
    ]
    assert (payload["retry"], payload["queue"], payload["backtrace"]) == (3, "hard", 5)
    assert payload["args"] == ["x"] and payload["class"] == "HardJob"
    assert r.smembers("queues") == {b"hard"}


def test_non_ascii_is_written_as_raw_utf8(r: redis.Redis, client: Client) -> None:
    client.push({"class": "HardJob", "args": ["café / ☃"]})

    raw = r.rpop("queue:default")
    assert "café / ☃".encode() in raw
    assert b"\\u" not in raw and b"\\/" not in raw


def test_every_push_gets_a_fresh_jid(r: redis.Redis, client: Client) -> None:
    jids = {client.push({"class": "HardJob", "args": []}) for _ in range(20)}

    assert len(jids) == 20
    assert all(JID.match(j or "") for j in jids)


def test_scheduled_push_goes_to_schedule_without_at_or_enqueued_at(
    r: redis.Redis, client: Client
) -> None:
    at = time.time() + 3600.25
    jid = client.push({"args": [1], "class": "HardJob", "at": at, "enqueued_at": 5.5})

    assert set(r.keys()) == {b"schedule"}
    [(member, score)] = r.zrange("schedule", 0, -1, withscores=True)
    assert score == at  # float seconds, not milliseconds
    payload = loads(member)
    assert "at" not in payload and "enqueued_at" not in payload
    assert payload["jid"] == jid
    assert list(payload) == ["retry", "queue", "args", "class", "jid", "created_at"]


def test_perform_in_schedules_relative_to_now(
    r: redis.Redis, client: Client, registry: Registry
) -> None:
    class Later(Job, registry=registry, name="Later"):
        def perform(self) -> None:
            pass

    t0 = time.time()
    Later.perform_in(60)
    t1 = time.time()

    [(member, score)] = r.zrange("schedule", 0, -1, withscores=True)
    assert t0 + 60 <= score <= t1 + 60
    assert loads(member)["class"] == "Later"
    assert r.exists("queues", "queue:default") == 0


def test_perform_at_a_past_time_enqueues_now(
    r: redis.Redis, client: Client, registry: Registry
) -> None:
    class Past(Job, registry=registry, name="Past"):
        def perform(self, x: int) -> None:
            pass

    jid = Past.perform_at(datetime.fromtimestamp(time.time() - 60, UTC), 7)

    assert r.exists("schedule") == 0
    payload = loads(r.rpop("queue:default"))
    assert payload["jid"] == jid and payload["args"] == [7]
    assert isinstance(payload["enqueued_at"], float)


def test_push_by_name_with_a_past_at_enqueues_now(r: redis.Redis, client: Client) -> None:
    roadie.push("HardJob", args=[1], queue="ruby", at=time.time() - 5, client=client)

    assert r.exists("schedule") == 0
    assert r.llen("queue:ruby") == 1


def test_raw_push_keeps_the_callers_key_order(r: redis.Redis, client: Client) -> None:
    client.push({"class": "HardJob", "args": [], "tags": ["a"]})

    assert list(loads(r.rpop("queue:default"))) == [
        "retry", "queue", "class", "args", "tags", "jid", "created_at", "enqueued_at",
    ]


def test_push_by_name_with_a_future_at_schedules(r: redis.Redis, client: Client) -> None:
    at = time.time() + 30.5
    jid = roadie.push("HardJob", args=[1], queue="ruby", at=at, client=client)

    [(member, score)] = r.zrange("schedule", 0, -1, withscores=True)
    assert score == at
    payload = loads(member)
    assert (payload["jid"], payload["queue"]) == (jid, "ruby")
    assert r.exists("queue:ruby", "queues") == 0


def test_push_by_name(r: redis.Redis, client: Client) -> None:
    jid = roadie.push("HardJob", args=[1, 2], queue="critical", client=client)

    payload = loads(r.rpop("queue:critical"))
    # Same layout as perform_async writes (and Sidekiq's perform_async).
    assert list(payload) == [
        "retry", "queue", "args", "class", "jid", "created_at", "enqueued_at",
    ]
    assert payload["class"] == "HardJob"
    assert payload["args"] == [1, 2]
    assert payload["queue"] == "critical"
    assert payload["retry"] is True
    assert payload["jid"] == jid
    assert r.smembers("queues") == {b"critical"}


def test_perform_bulk_is_one_write_and_keeps_fifo_order(
    r: redis.Redis, client: Client, registry: Registry
) -> None:
    class Many(Job, registry=registry, name="Many"):
        def perform(self, n: int) -> None:
            pass

    with CommandLog(r) as log:
        jids = Many.perform_bulk([[1], [2], [3], [4]])
        commands = log.commands()

    assert [c[0] for c in commands] == ["MULTI", "SADD", "LPUSH", "EXEC"]
    assert len(set(jids)) == 4 and all(JID.match(j or "") for j in jids)
    taken = [loads(r.rpop("queue:default")) for _ in range(4)]
    assert [p["args"] for p in taken] == [[1], [2], [3], [4]]
    assert [p["jid"] for p in taken] == jids
    assert len({p["enqueued_at"] for p in taken}) == 1


def test_bad_argument_raises_naming_its_path_and_writes_nothing(
    r: redis.Redis, client: Client
) -> None:
    with pytest.raises(ArgumentTypeError) as info:
        client.push({"class": "HardJob", "args": [1, {"when": datetime(2026, 1, 1)}]})

    message = str(info.value)
    assert "args[1]['when']" in message
    assert "datetime.datetime" in message
    assert message.startswith("HardJob: ")
    assert r.dbsize() == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), b"bytes", {1: "int key"}, {2}])
def test_other_non_json_arguments_are_refused(
    r: redis.Redis, client: Client, bad: object
) -> None:
    with pytest.raises(ArgumentTypeError, match=r"args\[0\]"):
        client.push({"class": "HardJob", "args": [bad]})
    assert r.dbsize() == 0


def test_bulk_with_one_bad_argument_writes_nothing(
    r: redis.Redis, client: Client, registry: Registry
) -> None:
    class Many(Job, registry=registry, name="Many"):
        def perform(self, n: object) -> None:
            pass

    args: list[list[Any]] = [[i] for i in range(50)]
    args[37] = [[1, 2, object()]]

    with pytest.raises(ArgumentTypeError, match=r"args\[0\]\[2\]"):
        Many.perform_bulk(args)
    assert r.dbsize() == 0


def test_client_middleware_can_mutate(r: redis.Redis, client: Client, hooks: Hooks) -> None:
    calls: list[tuple[str, str]] = []

    def tenant(name: str, payload: Payload, queue: str, call_next: Any) -> Payload | None:
        calls.append((name, queue))
        payload["tenant"] = "acme"
        return call_next()  # type: ignore[no-any-return]

    hooks.client_middleware.append(tenant)
    client.push({"class": "HardJob", "args": [1], "queue": "mail"})

    assert calls == [("HardJob", "mail")]
    assert loads(r.rpop("queue:mail"))["tenant"] == "acme"


def test_client_middleware_can_drop(r: redis.Redis, client: Client, hooks: Hooks) -> None:
    def drop_odd(name: str, payload: Payload, queue: str, call_next: Any) -> Payload | None:
        return None if payload["args"][0] % 2 else call_next()

    hooks.client_middleware.append(drop_odd)

    assert client.push({"class": "HardJob", "args": [1]}) is None
    assert r.dbsize() == 0
    jids = client.push_bulk([{"class": "HardJob", "args": [n]} for n in (2, 3, 4)])
    assert jids[1] is None and jids[0] is not None and jids[2] is not None
    assert [loads(raw)["args"] for raw in r.lrange("queue:default", 0, -1)] == [[4], [2]]


def test_middleware_that_adds_a_bad_argument_is_refused(
    r: redis.Redis, client: Client, hooks: Hooks
) -> None:
    def spoil(name: str, payload: Payload, queue: str, call_next: Any) -> Payload | None:
        payload["args"].append(datetime(2026, 1, 1))
        return call_next()  # type: ignore[no-any-return]

    hooks.client_middleware.append(spoil)

    with pytest.raises(ArgumentTypeError, match=r"args\[1\]"):
        client.push({"class": "HardJob", "args": [1]})
    assert r.dbsize() == 0


def test_set_overrides_options_for_one_push(
    r: redis.Redis, client: Client, registry: Registry
) -> None:
    class Mailer(Job, registry=registry, name="Mailer", queue="mail", retry=5):
        def perform(self, n: int) -> None:
            pass

    Mailer.set(queue="urgent", retry=False).perform_async(1)
    Mailer.perform_async(2)

    urgent = loads(r.rpop("queue:urgent"))
    assert (urgent["queue"], urgent["retry"], urgent["args"]) == ("urgent", False, [1])
    normal = loads(r.rpop("queue:mail"))
    assert (normal["queue"], normal["retry"], normal["args"]) == ("mail", 5, [2])
    assert r.smembers("queues") == {b"urgent", b"mail"}


def test_namespace_prefixes_every_key(r: redis.Redis, config: Config) -> None:
    c = Client(config.replace(namespace="x"), hooks=Hooks())

    c.push({"class": "HardJob", "args": [1], "queue": "q"})
    c.push({"class": "HardJob", "args": [2], "at": time.time() + 100})

    assert set(r.keys()) == {b"x:queues", b"x:queue:q", b"x:schedule"}
    assert r.smembers("x:queues") == {b"q"}
    assert loads(r.rpop("x:queue:q"))["queue"] == "q"


# --- a push no worker could run is refused, and writes nothing ------------------------


def run_aio(call: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run one roadie.aio call on a new event loop, closing its client after."""
    async def go() -> Any:
        try:
            return await call()
        finally:
            await aio.close()

    return asyncio.run(go())


class Later(Job, name="push_checks.Later"):
    def perform(self, n: int) -> None: ...


INF, NAN = float("inf"), float("nan")
FAR = datetime(9999, 12, 31, tzinfo=UTC)

ABSURD_TIMES: dict[str, Callable[[], Any]] = {
    "perform_in(inf)": lambda: Later.perform_in(INF, 1),
    "perform_in(nan)": lambda: Later.perform_in(NAN, 1),
    "perform_in(-inf)": lambda: Later.perform_in(-INF, 1),
    "perform_in(timedelta.max)": lambda: Later.perform_in(timedelta.max, 1),
    "perform_in(101 years)": lambda: Later.perform_in(101 * 365 * 86400, 1),
    "perform_at(1e15)": lambda: Later.perform_at(1e15, 1),
    "perform_at(nan)": lambda: Later.perform_at(NAN, 1),
    "perform_at(inf)": lambda: Later.perform_at(INF, 1),
    "perform_at(10**400)": lambda: Later.perform_at(10**400, 1),
    "perform_at(year 9999)": lambda: Later.perform_at(FAR, 1),
    "set().perform_in(inf)": lambda: Later.set(queue="low").perform_in(INF, 1),
    "set().perform_at(1e15)": lambda: Later.set(queue="low").perform_at(1e15, 1),
    "roadie.push(at=inf)": lambda: roadie.push("Later", [1], at=INF),
    "roadie.push(at=nan)": lambda: roadie.push("Later", [1], at=NAN),
    "Client.push(at=1e15)": lambda: roadie.client.get_client().push(
        {"class": "Later", "args": [1], "at": 1e15}),
    "aio.perform_in(inf)": lambda: run_aio(lambda: aio.perform_in(Later, INF, 1)),
    "aio.perform_at(nan)": lambda: run_aio(lambda: aio.perform_at(Later, NAN, 1)),
    "aio.perform_at(1e15)": lambda: run_aio(lambda: aio.perform_at(Later, 1e15, 1)),
    "aio.push(at=inf)": lambda: run_aio(lambda: aio.push("Later", [1], at=INF)),
}


@pytest.mark.parametrize("call", ABSURD_TIMES.values(), ids=ABSURD_TIMES.keys())
def test_a_time_no_job_can_wait_for_is_refused_and_nothing_is_written(
    r: redis.Redis, client: Client, call: Callable[[], Any]
) -> None:
    with pytest.raises(ValueError, match=r"Later.*is not a (time|delay) a job can be "
                       r"scheduled (for|with).* at most 100 years"):
        call()
    assert r.keys("*") == []


def test_a_time_in_milliseconds_is_refused_with_a_hint(r: redis.Redis, client: Client) -> None:
    with pytest.raises(ValueError, match=r"looks like milliseconds: divide by 1000"):
        Later.perform_at(time.time() * 1000 + 60_000, 1)
    assert r.keys("*") == []


def test_times_in_the_past_and_sidekiqs_relative_numbers_still_work(
    r: redis.Redis, client: Client
) -> None:
    Later.perform_in(-1e300, 1)  # any delay of zero or less: at once
    Later.perform_at(datetime(1, 1, 1, tzinfo=UTC), 2)
    assert r.llen("queue:default") == 2 and r.zcard("schedule") == 0
    before = time.time()
    Later.perform_at(999_999_999, 3)  # below 1e9: seconds from now (31.7 years)
    [(_, score)] = r.zrange("schedule", 0, -1, withscores=True)
    assert before + 999_999_999 <= score <= time.time() + 999_999_999


def test_a_naive_datetime_is_refused_and_nothing_is_written(
    r: redis.Redis, client: Client
) -> None:
    naive = datetime.now() + timedelta(hours=1)
    for call in (lambda: Later.perform_at(naive, 1),
                 lambda: run_aio(lambda: aio.perform_at(Later, naive, 1))):
        with pytest.raises(ValueError, match=r"Later.perform_at: .* is a naive datetime "
                           r"\(no tzinfo\).*datetime.now\(timezone.utc\)"):
            call()
    assert r.keys("*") == []
    Later.perform_at(naive.astimezone(), 1)  # the fix the message gives
    assert r.zcard("schedule") == 1


class Two(Job, name="push_checks.Two"):
    def perform(self, a: int, b: str = "x") -> None: ...


class KeywordOnly(Job, name="push_checks.KeywordOnly"):
    def perform(self, a: int, *, flag: bool) -> None: ...


class AnyArgs(Job, name="push_checks.AnyArgs"):
    def perform(self, *args: Any) -> None: ...


@roadie.job(name="push_checks.one_arg")
def one_arg(n: int) -> None: ...


def test_arguments_that_do_not_fit_perform_are_refused_and_nothing_is_written(
    r: redis.Redis, client: Client
) -> None:
    signature = r"Two: perform\(a, b='x'\) cannot take the arguments "
    refusals: list[tuple[Callable[[], Any], str]] = [
        (lambda: Two.perform_async(), signature + r"\[\] \(0 given\): missing a required "
         r"argument: 'a'\. Nothing was pushed"),
        (lambda: Two.perform_async(1, "y", 3), signature + r"\[1, 'y', 3\] \(3 given\): too "
         "many positional arguments"),
        (lambda: Two.perform_async(a=1), r"Two: got keyword arguments 'a'; job arguments "  # type: ignore[arg-type]
         "are positional only"),
        (lambda: Two.set(queue="low").perform_in(60, 1, 2, 3), signature),
        (lambda: Two.perform_at(time.time() + 60), signature),
        (lambda: Two.perform_bulk([[1], [1, "y"], [1, "y", 3]]), signature),
        (lambda: Two.perform_bulk([1, 2]), r"Two.perform_bulk: args_list holds one argument "  # type: ignore[list-item]
         "list per job; its item 0 is 1, not a list"),
        (lambda: KeywordOnly.perform_async(1), r"KeywordOnly: perform\(a, \*, flag\) cannot "
         "take the arguments .*missing a required argument: 'flag'"),
        (lambda: one_arg.perform_async(), r"one_arg: perform\(n\) cannot take"),
        (lambda: run_aio(lambda: aio.perform_async(Two)), signature),
        (lambda: run_aio(lambda: aio.perform_bulk(Two, [[1], []])), signature),
        (lambda: run_aio(lambda: aio.perform_async(Two, b="y")), "keyword arguments 'b'"),  # type: ignore[arg-type]
    ]
    for call, message in refusals:
        with pytest.raises(TypeError, match=message):
            call()
    assert r.keys("*") == []

    # What fits is pushed; a job pushed by name is not checked (its class may live
    # in another codebase).
    Two.perform_async(1)
    Two.perform_async(1, "y")
    AnyArgs.perform_async(1, 2, 3, 4)
    one_arg.perform_async(5)
    roadie.push("Two", [1, 2, 3, 4])
    run_aio(lambda: aio.perform_async(Two, 1))
    assert r.llen("queue:default") == 6

    # A test in fake or inline mode sees the same refusal as production.
    for mode in (roadie.testing.fake, roadie.testing.inline):
        with mode(), pytest.raises(TypeError, match=signature):
            Two.perform_async(1, "y", 3)


def test_a_job_class_of_main_is_refused_but_runs_in_test_modes(
    r: redis.Redis, client: Client, registry: Registry
) -> None:
    class Script(Job, registry=registry):
        __module__ = "__main__"  # as when defined in the script being run

        def perform(self, n: int) -> None:
            ran.append(n)

    class Named(Job, registry=registry, name="Named"):
        __module__ = "__main__"

        def perform(self) -> None: ...

    ran: list[int] = []
    assert Script.name.startswith("__main__.")
    for call in (lambda: Script.perform_async(1), lambda: Script.perform_in(60, 1),
                 lambda: Script.perform_bulk([[1]]),
                 lambda: run_aio(lambda: aio.perform_async(Script, 1))):
        with pytest.raises(JobDefinitionError, match=r"__main__\..*Script is defined in "
                           r"__main__ .*a roadie worker can never import it under that "
                           r"name: nothing was pushed\. Move the job into a module"):
            call()
    assert r.keys("*") == []
    assert Named.perform_async()  # a name the worker may know: pushed

    # The testing clients run jobs in this process, where __main__ is importable.
    with roadie.testing.fake(registry=registry):
        Script.perform_async(2)
        assert roadie.testing.drain() == 1
    with roadie.testing.inline(registry=registry):
        Script.perform_async(3)
    assert ran == [2, 3]


def test_prepare_ignores_at_even_an_absurd_one(r: redis.Redis, client: Client) -> None:
    # The admin API's "retry now" prepares stored entries: a hostile "at" in one must
    # not make it fail (only a push uses "at", and checks it).
    for at in (1e300, INF, NAN, 5.0):
        payload = client.prepare({"class": "push_checks.Later", "args": [1], "at": at})
        assert payload is not None and "at" not in payload
    assert r.keys("*") == []
