"""roadie/client.py: a push's exact Redis writes (SIDEKIQ-WIRE.md section 4), client
middleware, ``prepare``, and ``roadie.redis_client()``."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from integration_support import CommandLog, compact, loads

import roadie
import roadie.client
import roadie.testing
from roadie.client import Client
from roadie.config import Config
from roadie.errors import ArgumentTypeError
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.payload import Payload
from roadie.registry import Registry

JID = re.compile(r"^[0-9a-f]{24}$")


@pytest.fixture
def client(config: Config, hooks: Hooks, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """A client on the test Redis, also made the default one (for perform_async); unlike
    conftest.py's, it runs the test's ``hooks`` (client middleware)."""
    c = Client(config, hooks=hooks)
    with roadie.current.using(c):
        yield c


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


# --- prepare: what a push would write, not written ----------------------------------
INF, NAN = float("inf"), float("nan")


def test_prepare_ignores_at_even_an_absurd_one(r: redis.Redis, client: Client) -> None:
    # The admin API's "retry now" prepares stored entries: a hostile "at" in one must
    # not make it fail (only a push uses "at", and checks it).
    for at in (1e300, INF, NAN, 5.0):
        payload = client.prepare({"class": "push_checks.Later", "args": [1], "at": at})
        assert payload is not None and "at" not in payload
    assert r.keys("*") == []


# --- roadie.redis_client() ------------------------------------------------------
def test_redis_client_is_one_connection_per_thread(r: redis.Redis, client: Client) -> None:
    mine = roadie.redis_client()
    assert roadie.redis_client() is mine
    other: list[Any] = []
    t = threading.Thread(target=lambda: other.append(roadie.redis_client()))
    t.start()
    t.join(5)

    assert other and other[0] is not mine
    mine.set("written-by-job", b"1")
    assert r.get("written-by-job") == b"1"  # the default client's Redis
    assert mine.connection is not None  # a single, dedicated connection


def test_redis_client_follows_a_new_default_client(config: Config, client: Client) -> None:
    first = roadie.redis_client()
    roadie.configure(config)
    try:
        assert roadie.redis_client() is not first
    finally:
        roadie.configure(client=client)
