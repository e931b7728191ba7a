"""server.poller.Poller: due retry and schedule entries -> queues, on real Redis."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest
import redis
from integration_support import loads

from roadie.config import Config
from roadie.errors import MalformedPayload
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.payload import Payload
from roadie.retry import malformed_original
from roadie.server.outage import Outage
from roadie.server.poller import BATCH, Poller


def make(r: redis.Redis, config: Config, hooks: Hooks | None = None) -> Poller:
    return Poller(r, config, Keys(config.namespace), hooks or Hooks(), Outage("redis://test"),
                  threading.Event())


RETRY_ENTRY: dict[str, Any] = {
    "retry": True, "queue": "q1", "args": [1, {"a": "b"}], "class": "HardJob",
    "jid": "0123456789abcdef01234567", "created_at": 1.5, "enqueued_at": 2.5,
    "error_message": "boom", "error_class": "RuntimeError", "failed_at": 3.5,
    "retry_count": 0, "custom": {"kept": True},
}


def test_due_retry_entry_returns_to_its_queue_with_only_enqueued_at_changed(
    r: redis.Redis, config: Config
) -> None:
    r.zadd("retry", {orjson.dumps(RETRY_ENTRY): time.time() - 10})
    t0 = time.time()

    assert make(r, config).enqueue_due() == 1

    t1 = time.time()
    assert r.exists("retry") == 0
    [raw] = r.lrange("queue:q1", 0, -1)
    payload = loads(raw)
    assert isinstance(payload["enqueued_at"], float) and t0 <= payload["enqueued_at"] <= t1
    assert {k: v for k, v in payload.items() if k != "enqueued_at"} == {
        k: v for k, v in RETRY_ENTRY.items() if k != "enqueued_at"
    }
    assert list(payload) == list(RETRY_ENTRY)
    assert r.smembers("queues") == {b"q1"}


def test_due_scheduled_entry_gets_enqueued_at(r: redis.Redis, config: Config) -> None:
    member = {"retry": True, "queue": "default", "args": [], "class": "Later",
              "jid": "aaaaaaaaaaaaaaaaaaaaaaaa", "created_at": 10.25}
    r.zadd("schedule", {orjson.dumps(member): time.time() - 1})

    assert make(r, config).enqueue_due() == 1

    payload = loads(r.rpop("queue:default"))
    assert list(payload) == [*member, "enqueued_at"]
    assert payload["created_at"] == 10.25
    assert r.exists("schedule") == 0


def test_not_yet_due_entries_stay(r: redis.Redis, config: Config) -> None:
    now = time.time()
    due = orjson.dumps({"class": "A", "args": [1], "queue": "default"})
    later = orjson.dumps({"class": "A", "args": [2], "queue": "default"})
    r.zadd("schedule", {due: now - 1, later: now + 100})
    r.zadd("retry", {later: now + 50})

    assert make(r, config).enqueue_due() == 1

    assert r.zrange("schedule", 0, -1) == [later]
    assert r.zrange("retry", 0, -1) == [later]
    assert [loads(x)["args"] for x in r.lrange("queue:default", 0, -1)] == [[1]]


def test_now_argument_sets_what_is_due(r: redis.Redis, config: Config) -> None:
    r.zadd("schedule", {orjson.dumps({"class": "A", "args": [], "queue": "x"}): 1000.0})

    assert make(r, config).enqueue_due(now=999.0) == 0
    assert make(r, config).enqueue_due(now=1000.0) == 1
    assert r.llen("queue:x") == 1


def test_retry_entries_move_before_schedule_entries(r: redis.Redis, config: Config) -> None:
    past = time.time() - 100
    r.zadd("schedule", {orjson.dumps({"class": "S", "args": [], "queue": "q"}): past - 50})
    r.zadd("retry", {orjson.dumps({"class": "R", "args": [], "queue": "q"}): past})

    assert make(r, config).enqueue_due() == 2

    assert [loads(r.rpop("queue:q"))["class"] for _ in range(2)] == ["R", "S"]


def test_due_entries_keep_their_score_order(r: redis.Redis, config: Config) -> None:
    base = time.time() - 100
    r.zadd("schedule", {orjson.dumps({"class": "A", "args": [i], "queue": "q"}): base + i
                        for i in (3, 1, 2)})

    make(r, config).enqueue_due()

    assert [loads(r.rpop("queue:q"))["args"] for _ in range(3)] == [[1], [2], [3]]


def test_more_than_one_batch_moves_everything(r: redis.Redis, config: Config) -> None:
    n = BATCH * 2 + 7
    past = time.time() - 10
    r.zadd("schedule", {orjson.dumps({"class": "A", "args": [i], "queue": "bulk"}): past + i / 1e3
                        for i in range(n)})

    assert make(r, config).enqueue_due(now=past + 1) == n

    assert r.llen("queue:bulk") == n
    assert r.exists("schedule") == 0


def test_malformed_member_goes_to_dead(r: redis.Redis, config: Config) -> None:
    good = orjson.dumps({"class": "A", "args": [], "queue": "default"})
    r.zadd("schedule", {b"{broken": time.time() - 5, good: time.time() - 4})
    r.zadd("retry", {b'{"class":"NoArgs"}': time.time() - 5})

    assert make(r, config).enqueue_due() == 1

    dead = [orjson.loads(m) for m in r.zrange("dead", 0, -1)]
    assert sorted(malformed_original(d) or b"" for d in dead) == [
        b'{"class":"NoArgs"}', b"{broken"]
    reasons = sorted(d["error_message"] for d in dead)
    assert reasons[0] == "job payload of class 'NoArgs' has no 'args' list"
    assert reasons[1].startswith("queue entry is not valid JSON")
    assert {d["error_class"] for d in dead} == {"roadie.errors.MalformedPayload"}
    assert r.exists("schedule", "retry") == 0
    assert r.llen("queue:default") == 1


def test_a_malformed_member_is_buried_once_by_two_pollers(
    r: redis.Redis, config: Config
) -> None:
    r.zadd("retry", {b"{broken": time.time() - 5})
    first, second = make(r, config), make(r, config)
    # Both read the member before either buries it (as two processes' pollers can).
    first._bury("retry", b"{broken", MalformedPayload("not JSON"))
    second._bury("retry", b"{broken", MalformedPayload("not JSON"))

    assert r.zcard("dead") == 1


def test_client_middleware_runs_again_and_can_reroute_or_drop(
    r: redis.Redis, config: Config
) -> None:
    hooks = Hooks()
    seen: list[tuple[str, str]] = []

    def mw(name: str, payload: Payload, queue: str, call_next: Any) -> Payload | None:
        seen.append((name, queue))
        if payload["args"] == ["drop"]:
            return None
        if payload["args"] == ["move"]:
            payload["queue"] = "elsewhere"
        return call_next()  # type: ignore[no-any-return]

    hooks.client_middleware.append(mw)
    past = time.time() - 5
    for i, arg in enumerate(["drop", "move", "keep"]):
        r.zadd("schedule", {orjson.dumps({"class": "A", "args": [arg], "queue": "q"}): past + i})

    assert make(r, config, hooks).enqueue_due() == 2

    assert seen == [("A", "q")] * 3
    assert r.exists("schedule") == 0
    assert loads(r.rpop("queue:elsewhere"))["args"] == ["move"]
    assert loads(r.rpop("queue:q"))["args"] == ["keep"]
    assert r.smembers("queues") == {b"elsewhere", b"q"}


def test_stopped_poller_moves_nothing(r: redis.Redis, config: Config) -> None:
    r.zadd("schedule", {orjson.dumps({"class": "A", "args": [], "queue": "q"}): 1.0})
    poller = make(r, config)
    poller._stop.set()

    assert poller.enqueue_due() == 0
    assert r.zcard("schedule") == 1


def test_namespaced_poller(r: redis.Redis, config: Config) -> None:
    r.zadd("ns:retry", {orjson.dumps({"class": "A", "args": [], "queue": "q"}): 1.0})
    r.zadd("retry", {orjson.dumps({"class": "B", "args": [], "queue": "q"}): 1.0})

    assert make(r, config.replace(namespace="ns")).enqueue_due() == 1

    assert r.llen("ns:queue:q") == 1 and r.smembers("ns:queues") == {b"q"}
    assert r.zcard("retry") == 1 and r.exists("queue:q") == 0


def sample_intervals(poller: Poller, n: int = 300) -> list[float]:
    return [poller.interval_s() for _ in range(n)]


def test_interval_with_one_process_is_half_to_one_and_a_half_average(
    r: redis.Redis, config: Config
) -> None:
    intervals = sample_intervals(make(r, config.replace(poll_interval_average_s=4.0)))

    assert all(2.0 <= i < 6.0 for i in intervals)
    assert min(intervals) < 3.0 and max(intervals) > 5.0


def test_interval_scales_with_the_process_count(r: redis.Redis, config: Config) -> None:
    r.sadd("processes", "p1", "p2", "p3")

    intervals = sample_intervals(make(r, config.replace(poll_interval_average_s=4.0)))

    # average 3 x 4 s = 12 s: uniform over [6, 18)
    assert all(6.0 <= i < 18.0 for i in intervals)
    assert min(intervals) < 8.0 and max(intervals) > 16.0


def test_interval_with_ten_or_more_processes_starts_at_zero(
    r: redis.Redis, config: Config
) -> None:
    r.sadd("processes", *[f"p{i}" for i in range(10)])

    intervals = sample_intervals(make(r, config.replace(poll_interval_average_s=1.0)))

    # average 10 x 1 s: uniform over [0, 10)
    assert all(0.0 <= i < 10.0 for i in intervals)
    assert min(intervals) < 2.0 and max(intervals) > 8.0


@pytest.mark.parametrize("processes", [0, 12])
def test_fixed_interval_ignores_the_process_count(
    r: redis.Redis, config: Config, processes: int
) -> None:
    if processes:
        r.sadd("processes", *[f"p{i}" for i in range(processes)])

    intervals = sample_intervals(make(r, config.replace(poll_interval_fixed_s=2.0)))

    assert all(1.0 <= i < 3.0 for i in intervals)
