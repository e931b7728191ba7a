"""server.periodic.PeriodicScheduler in this process, with time passed in explicitly.

Several schedulers on one Redis stand for several roadie processes; a scheduler built
later with the same schedules stands for a process started after a downtime.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis
from support.wait import wait_until

import roadie
from roadie.config import Config
from roadie.cron import Schedule, make_schedule
from roadie.embedded import RedisServer
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.payload import Payload
from roadie.registry import Registry
from roadie.server.launcher import Launcher
from roadie.server.outage import Outage
from roadie.server.periodic import REFRESH_S, PeriodicScheduler, Tick

K = Keys()
MINUTE = 60.0
HOUR = 3600.0
#: 2024-05-01 00:00:00 UTC, a round time to count from.
T0 = datetime(2024, 5, 1, tzinfo=UTC).timestamp()


@pytest.fixture
def registry() -> Registry:
    reg = Registry()

    class SyncRates(roadie.Job, registry=reg, name="app.SyncRates", queue="rates", retry=3):
        def perform(self, currency: str) -> None:
            pass

    return reg


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


Make = Callable[..., PeriodicScheduler]


@pytest.fixture
def make(config: Config, r: redis.Redis, registry: Registry, hooks: Hooks,
         redis_url: str) -> Iterator[Make]:
    """``make(*schedules)``: a scheduler (one "process") on the test's Redis."""
    stops: list[threading.Event] = []
    clients: list[redis.Redis] = []

    def build(*schedules: Schedule, identity: str = "host:1:abc") -> PeriodicScheduler:
        stop = threading.Event()
        stops.append(stop)
        client = redis.Redis.from_url(redis_url)
        clients.append(client)
        return PeriodicScheduler(client, config, K, hooks, registry, Outage(redis_url),
                                 stop, schedules, identity=identity)

    yield build
    for stop in stops:
        stop.set()
    for client in clients:
        client.close()


def queued(r: redis.Redis, queue: str = "rates") -> list[Payload]:
    """Jobs on a queue, oldest first."""
    return [orjson.loads(raw) for raw in reversed(r.lrange(f"queue:{queue}", 0, -1))]


def hourly(**options: Any) -> Schedule:
    return make_schedule("0 * * * *", "app.SyncRates", ["EUR"], name="rates", **options)


def ran_at_one(make: Make, schedule: Schedule) -> None:
    """A "process" that registered at 00:30 and pushed the 01:00 tick."""
    s = make(schedule)
    s.register(now=T0 + 30 * MINUTE)
    [done] = s.run_due(now=T0 + HOUR)
    assert done.pushed


def test_register_writes_the_definition(make: Make, r: redis.Redis) -> None:
    s = make(hourly(tz="Europe/Paris"), identity="web-1:42:abc")
    s.register(now=T0 + 30 * MINUTE)
    assert r.hkeys(K.periodic) == [b"rates"]
    assert orjson.loads(r.hget(K.periodic, "rates")) == {
        "name": "rates", "cron": "0 * * * *", "class": "app.SyncRates", "args": ["EUR"],
        "tz": "Europe/Paris", "queue": "rates", "missed": "run_once", "grace_s": 60.0,
        "since": T0 + 30 * MINUTE, "updated_at": T0 + 30 * MINUTE, "identity": "web-1:42:abc",
    }
    assert r.exists(K.periodic_last) == 0
    assert s.next_at == {"rates": T0 + HOUR}


def test_a_tick_pushes_one_job_with_the_class_options(make: Make, r: redis.Redis) -> None:
    s = make(hourly())
    s.register(now=T0 + 30 * MINUTE)
    assert s.run_due(now=T0 + 59 * MINUTE) == []
    assert s.wait_s(now=T0 + HOUR - 0.25) == 0.25
    [done] = s.run_due(now=T0 + HOUR + 0.01)
    assert done == Tick("rates", T0 + HOUR, True, done.jid, 0)
    [job] = queued(r)
    assert job["jid"] == done.jid
    assert job["class"] == "app.SyncRates"
    assert job["args"] == ["EUR"]
    assert job["queue"] == "rates"
    assert job["retry"] == 3
    assert job["periodic"] == "rates"
    assert job["periodic_at"] == T0 + HOUR
    assert isinstance(job["enqueued_at"], float)
    assert r.smembers("queues") == {b"rates"}
    assert r.hget(K.periodic_last, "rates") == str(int(T0 + HOUR)).encode()
    assert s.next_at == {"rates": T0 + 2 * HOUR}
    assert s.run_due(now=T0 + HOUR + 30) == []
    assert len(queued(r)) == 1


def test_three_processes_push_each_tick_exactly_once(make: Make, r: redis.Redis) -> None:
    every_second = make_schedule("* * * * * *", "app.SyncRates", ["EUR"], name="rates")
    procs = [make(every_second, identity=f"host:{i}:abc") for i in range(3)]
    for p in procs:
        p.register(now=T0 + 0.5)
    pushed_by: dict[float, list[int]] = {}
    for second in range(1, 7):
        # Each "process" wakes in its own order, slightly apart.
        for i in (second % 3, (second + 1) % 3, (second + 2) % 3):
            for done in procs[i].run_due(now=T0 + second + 0.001 * i):
                assert done.at == T0 + second
                if done.pushed:
                    pushed_by.setdefault(done.at, []).append(i)
    assert {at: len(who) for at, who in pushed_by.items()} == {
        T0 + n: 1 for n in range(1, 7)
    }
    assert [job["periodic_at"] for job in queued(r)] == [T0 + n for n in range(1, 7)]
    # The winner of each tick is whoever came first.
    assert [who[0] for _, who in sorted(pushed_by.items())] == [1, 2, 0, 1, 2, 0]


def test_a_process_behind_the_others_does_not_push_old_ticks(make: Make, r: redis.Redis) -> None:
    fast, slow = make(hourly()), make(hourly())
    fast.register(now=T0 + 1)
    slow.register(now=T0 + 1)
    for hour in (1, 2, 3):
        [done] = fast.run_due(now=T0 + hour * HOUR)
        assert done.pushed
    # The slow one wakes after a long pause: its ticks were all taken.
    [done] = slow.run_due(now=T0 + 3 * HOUR + 1)
    assert done == Tick("rates", T0 + 3 * HOUR, False, None, 2)
    assert len(queued(r)) == 3


# --- missed ticks -----------------------------------------------------------------
def test_run_once_pushes_one_catch_up_run_after_a_downtime(make: Make, r: redis.Redis) -> None:
    before = make(hourly())
    before.register(now=T0 + 30 * MINUTE)
    [done] = before.run_due(now=T0 + HOUR)
    assert done.pushed
    # Every process is down from 01:00:30 to 04:20: the ticks of 02:00, 03:00, 04:00 pass.
    after = make(hourly())
    after.register(now=T0 + 4 * HOUR + 20 * MINUTE)
    assert after.next_at == {"rates": T0 + 2 * HOUR}
    [done] = after.run_due(now=T0 + 4 * HOUR + 20 * MINUTE)
    assert done == Tick("rates", T0 + 4 * HOUR, True, done.jid, missed=2)
    assert [job["periodic_at"] for job in queued(r)] == [T0 + HOUR, T0 + 4 * HOUR]
    assert after.run_due(now=T0 + 4 * HOUR + 21 * MINUTE) == []
    [done] = after.run_due(now=T0 + 5 * HOUR)
    assert done == Tick("rates", T0 + 5 * HOUR, True, done.jid, 0)
    assert len(queued(r)) == 3


def test_three_processes_starting_together_push_one_catch_up_run(
    make: Make, r: redis.Redis
) -> None:
    ran_at_one(make, hourly())
    late = T0 + 6 * HOUR + 10 * MINUTE
    procs = [make(hourly()) for _ in range(3)]
    for p in procs:
        p.register(now=late)
    results = [p.run_due(now=late + i) for i, p in enumerate(procs)]
    assert [[d.pushed for d in res] for res in results] == [[True], [False], [False]]
    assert [job["periodic_at"] for job in queued(r)] == [T0 + HOUR, T0 + 6 * HOUR]


def test_skip_drops_ticks_missed_during_a_downtime(make: Make, r: redis.Redis) -> None:
    ran_at_one(make, hourly(missed="skip"))
    after = make(hourly(missed="skip"))
    after.register(now=T0 + 4 * HOUR + 20 * MINUTE)
    [done] = after.run_due(now=T0 + 4 * HOUR + 20 * MINUTE)
    assert done == Tick("rates", T0 + 4 * HOUR, False, None, missed=2, skipped=True)
    assert [job["periodic_at"] for job in queued(r)] == [T0 + HOUR]
    assert r.hget(K.periodic_last, "rates") == str(int(T0 + HOUR)).encode()
    assert after.run_due(now=T0 + 4 * HOUR + 30 * MINUTE) == []
    [done] = after.run_due(now=T0 + 5 * HOUR)
    assert done.pushed
    assert [job["periodic_at"] for job in queued(r)] == [T0 + HOUR, T0 + 5 * HOUR]


def test_skip_still_runs_a_tick_within_its_grace(make: Make, r: redis.Redis) -> None:
    ran_at_one(make, hourly(missed="skip"))
    after = make(hourly(missed="skip", grace_s=45))
    after.register(now=T0 + 2 * HOUR + 40)
    [done] = after.run_due(now=T0 + 2 * HOUR + 40)
    assert done == Tick("rates", T0 + 2 * HOUR, True, done.jid, 0)
    again = make(hourly(missed="skip", grace_s=45))
    again.register(now=T0 + 3 * HOUR + 50)
    [done] = again.run_due(now=T0 + 3 * HOUR + 50)
    assert done.skipped
    assert [job["periodic_at"] for job in queued(r)] == [T0 + HOUR, T0 + 2 * HOUR]


def test_a_first_tick_missed_by_everyone_is_caught_up(make: Make, r: redis.Redis) -> None:
    # Registered at 00:30, then every process is down over 01:00: no last run exists,
    # the registration time stands for it.
    make(hourly()).register(now=T0 + 30 * MINUTE)
    after = make(hourly())
    after.register(now=T0 + HOUR + 30 * MINUTE)
    [done] = after.run_due(now=T0 + HOUR + 30 * MINUTE)
    assert done == Tick("rates", T0 + HOUR, True, done.jid, 0)


def test_a_new_schedule_does_not_run_for_ticks_before_it_existed(
    make: Make, r: redis.Redis
) -> None:
    s = make(hourly())
    s.register(now=T0 + HOUR + 30 * MINUTE)
    assert s.run_due(now=T0 + HOUR + 30 * MINUTE) == []
    assert r.exists("queue:rates") == 0


def test_a_changed_cron_starts_afresh(make: Make, r: redis.Redis) -> None:
    ran_at_one(make, hourly())
    changed = make(make_schedule("30 * * * *", "app.SyncRates", ["EUR"], name="rates"))
    changed.register(now=T0 + 5 * HOUR + 45 * MINUTE)
    assert changed.run_due(now=T0 + 5 * HOUR + 45 * MINUTE) == []
    assert changed.next_at == {"rates": T0 + 6 * HOUR + 30 * MINUTE}
    definition = orjson.loads(r.hget(K.periodic, "rates"))
    assert definition["since"] == T0 + 5 * HOUR + 45 * MINUTE
    assert definition["cron"] == "30 * * * *"


def test_an_unchanged_schedule_keeps_its_registration_time(make: Make, r: redis.Redis) -> None:
    make(hourly()).register(now=T0 + 10)
    s = make(hourly())
    s.register(now=T0 + 20)
    s.run_due(now=T0 + 20 + REFRESH_S)
    definition = orjson.loads(r.hget(K.periodic, "rates"))
    assert definition["since"] == T0 + 10
    assert definition["updated_at"] == T0 + 20 + REFRESH_S


# --- what is pushed -------------------------------------------------------------------
def test_client_middleware_runs_and_may_drop_a_tick(
    make: Make, r: redis.Redis, hooks: Hooks
) -> None:
    seen: list[str] = []

    def middleware(name: str, payload: Payload, queue: str,
                   call_next: Callable[[], Payload | None]) -> Payload | None:
        seen.append(name)
        if payload["periodic_at"] == T0 + 2 * HOUR:
            return None
        payload["tenant"] = "acme"
        return call_next()

    hooks.client_middleware.append(middleware)
    s = make(hourly())
    s.register(now=T0)
    [first] = s.run_due(now=T0 + HOUR)
    [dropped] = s.run_due(now=T0 + 2 * HOUR)
    assert first.pushed and first.jid is not None
    assert dropped == Tick("rates", T0 + 2 * HOUR, True, None, 0)
    assert seen == ["app.SyncRates", "app.SyncRates"]
    [job] = queued(r)
    assert job["tenant"] == "acme"
    assert r.hget(K.periodic_last, "rates") == str(int(T0 + 2 * HOUR)).encode()


def test_queue_override_and_a_job_pushed_by_name(make: Make, r: redis.Redis) -> None:
    s = make(
        make_schedule("0 * * * *", "app.SyncRates", ["USD"], name="a", queue="critical"),
        make_schedule("0 * * * *", "Ruby::Report", [7], name="b"),
    )
    s.register(now=T0)
    assert [d.pushed for d in s.run_due(now=T0 + HOUR)] == [True, True]
    [a] = queued(r, "critical")
    [b] = queued(r, "default")
    assert (a["class"], a["args"], a["retry"]) == ("app.SyncRates", ["USD"], 3)
    assert (b["class"], b["args"], b["retry"]) == ("Ruby::Report", [7], True)
    assert r.smembers("queues") == {b"critical", b"default"}
    assert orjson.loads(r.hget(K.periodic, "b"))["queue"] == "default"


# --- the thread and the launcher ------------------------------------------------------
def test_the_thread_pushes_on_the_clock_and_stops(make: Make, r: redis.Redis) -> None:
    s = make(make_schedule("* * * * * *", "app.SyncRates", ["EUR"], name="rates"))
    s.start()
    assert s.thread.name == "roadie.periodic"
    wait_until(lambda: len(queued(r)) >= 2, 10, message="no ticks pushed")
    s._stop.set()
    s.thread.join(5)
    assert not s.thread.is_alive()
    ticks = [job["periodic_at"] for job in queued(r)]
    assert ticks == [ticks[0] + n for n in range(len(ticks))]


def test_launcher_runs_config_and_code_schedules_and_stops_them_on_quiet(
    config: Config, r: redis.Redis, registry: Registry, hooks: Hooks
) -> None:
    from_file = make_schedule("* * * * * *", "app.SyncRates", ["FILE"], name="file")
    from_code = roadie.Schedules([make_schedule("* * * * * *", "app.SyncRates", ["CODE"],
                                                name="code")])
    cfg = config.replace(periodic=(from_file,), concurrency=1, queues=(("none", 0),))
    launcher = Launcher(cfg, hooks=hooks, registry=registry, schedules=from_code)
    assert launcher.schedules.names() == ["code", "file"]
    launcher.start()
    try:
        wait_until(lambda: {tuple(j["args"]) for j in queued(r)} == {("FILE",), ("CODE",)},
                   10, message="both schedules did not push")
        launcher.quiet()
        launcher.periodic.thread.join(5)
        assert not launcher.periodic.thread.is_alive()
    finally:
        launcher.stop()


def test_launcher_refuses_two_schedules_with_one_name(
    config: Config, r: redis.Redis, registry: Registry
) -> None:
    a = make_schedule("* * * * *", "A", name="same")
    b = make_schedule("0 * * * *", "B", name="same")
    with pytest.raises(roadie.ConfigError, match="two periodic jobs are named 'same'"):
        Launcher(config.replace(periodic=(a,)), registry=registry,
                 schedules=roadie.Schedules([b]))


def test_the_thread_rides_out_a_redis_outage_and_collapses_what_it_missed(
    redis_server: RedisServer, registry: Registry, hooks: Hooks
) -> None:
    url = redis_server.url
    config = Config(redis_url=url, redis_url_configured=True)
    client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    reader = redis.Redis.from_url(url)
    stop = threading.Event()
    every_second = make_schedule("* * * * * *", "app.SyncRates", ["EUR"], name="rates",
                                 grace_s=0)
    s = PeriodicScheduler(client, config, K, hooks, registry, Outage(url), stop,
                          [every_second])
    s.start()
    try:
        wait_until(lambda: len(queued(reader)) >= 2, 10, message="no ticks before the outage")
        down_at = time.time()
        redis_server.stop()
        # Let at least three ticks pass with Redis away.
        wait_until(lambda: time.time() > down_at + 3.5, 10)
        redis_server.start()
        up_at = time.time()
        wait_until(lambda: any(j["periodic_at"] > up_at for j in queued(reader)), 20,
                   message="no ticks after the outage")
    finally:
        stop.set()
        s.thread.join(10)
        client.close()
    ticks = [job["periodic_at"] for job in queued(reader)]
    reader.close()
    assert ticks == sorted(set(ticks))
    # The seconds missed while Redis was away were not pushed one by one.
    assert [t for t in ticks if down_at + 1.5 < t < up_at - 1.5] == []
    assert not s.thread.is_alive()
