"""roadie.api against a real Redis: what it reads, and that every action is exact.

Data comes from roadie itself (its client and heartbeat) and from payloads and
hashes as Sidekiq writes them (SIDEKIQ-WIRE.md: 6.4 captures, 8.x shapes), so the
same readers are proven on both.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis
from integration_support import IDENTITY
from support.wait import wait_until

from roadie.api import (
    DeadSet,
    JobKilled,
    ProcessSet,
    Queue,
    RetrySet,
    ScheduledSet,
    Stats,
    Workers,
    queue_sizes,
    queues,
)
from roadie.client import Client
from roadie.config import Config
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.server.heartbeat import Heartbeat
from roadie.server.outage import Outage
from roadie.server.state import State

# Captured from Sidekiq 6.4.1 (SIDEKIQ-WIRE.md 3.2): Ruby's key order and float digits.
RUBY_JOB = (
    '{"retry":true,"queue":"default","args":[1,"two",{"three":3.5},[true,null]],'
    '"class":"OkJob","jid":"89c26b0b73fc12cf89e5c357","created_at":1795869053.437359,'
    '"enqueued_at":1795869053.4375207}'
)
RUBY_RETRY = (
    '{"retry":2,"queue":"other","backtrace":3,"args":[7],"class":"FailJob",'
    '"jid":"573528414260915c54e46568","created_at":1795869059.9206307,'
    '"enqueued_at":1795869059.9208095,"error_message":"boom 7","error_class":"ArgumentError",'
    '"failed_at":1795869060.1465094,"retry_count":1,"retried_at":1795869090.5}'
)
# Sidekiq 8 (SIDEKIQ-WIRE.md 3.3): integer milliseconds.
SK8_RETRY = (
    '{"retry":true,"queue":"default","args":[1,"two"],"class":"HardJob",'
    '"jid":"b4a577edbccf1d805744efa9","created_at":1754000000123,"enqueued_at":1754000000125,'
    '"error_message":"boom","error_class":"RuntimeError","failed_at":1754000001010,'
    '"retry_count":0}'
)


def loads(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    assert isinstance(value, dict)
    return value


@pytest.fixture
def client(config: Config) -> Client:
    return Client(config, hooks=Hooks())


# --- queues ---------------------------------------------------------------------
def test_queue_size_entries_and_latency_in_float_seconds(r: redis.Redis, config: Config,
                                                          client: Client) -> None:
    jids = [client.push({"class": "A", "args": [i]}) for i in range(3)]
    q = Queue("default", config)
    assert q.size() == 3
    entries = q.entries(0, 10)
    assert [e.jid for e in entries] == list(reversed(jids))  # index 0 = newest
    assert [e.args for e in entries] == [[2], [1], [0]]
    assert all(e.queue == "default" for e in entries)
    tail = loads(r.lindex("queue:default", -1))
    assert isinstance(tail["enqueued_at"], float)
    assert q.latency(now=tail["enqueued_at"] + 12.5) == pytest.approx(12.5)
    assert q.find_job(jids[1]) is not None
    assert q.find_job("0" * 24) is None


def test_queue_latency_reads_sidekiq8_integer_milliseconds(r: redis.Redis,
                                                            config: Config) -> None:
    now = time.time()
    ms = int((now - 30) * 1000)
    r.lpush("queue:ms", json.dumps({"class": "X", "args": [], "jid": "a" * 24,
                                    "enqueued_at": ms, "created_at": ms - 5}))
    assert Queue("ms", config).latency(now=now) == pytest.approx(30, abs=0.01)
    # No enqueued_at: created_at is used (as Sidekiq does).
    r.rpush("queue:old", json.dumps({"class": "X", "args": [], "created_at": now - 7.0}))
    assert Queue("old", config).latency(now=now) == pytest.approx(7.0)
    assert Queue("empty", config).latency() == 0.0


def test_queue_delete_uses_the_exact_raw_of_a_ruby_payload(r: redis.Redis,
                                                           config: Config) -> None:
    r.lpush("queue:default", RUBY_JOB)
    r.sadd("queues", "default")
    q = Queue("default", config)
    [entry] = q.entries()
    assert entry.raw == RUBY_JOB.encode()
    assert entry.display_class == "OkJob"
    assert entry.enqueued_at == 1795869053.4375207
    # Another encoding of the same payload is different bytes and must not match.
    assert not q.delete(json.dumps(entry.payload))
    assert q.delete(entry.raw)
    assert not q.delete(entry.raw)
    assert r.llen("queue:default") == 0


def test_queue_clear_unlinks_and_forgets_the_name(r: redis.Redis, config: Config,
                                                  client: Client) -> None:
    client.push({"class": "A", "args": [], "queue": "low"})
    client.push({"class": "A", "args": [], "queue": "high"})
    assert [q.name for q in queues(config)] == ["high", "low"]
    assert queue_sizes(config) == {"high": 1, "low": 1}
    Queue("low", config).clear()
    assert not r.exists("queue:low")
    assert r.smembers("queues") == {b"high"}


# --- stats ------------------------------------------------------------------------
def test_stats_summary_counts_everything(r: redis.Redis, config: Config,
                                         client: Client) -> None:
    for i in range(4):
        client.push({"class": "A", "args": [i]})
    client.push({"class": "A", "args": [], "queue": "other"})
    client.push({"class": "A", "args": [], "at": time.time() + 100})
    r.zadd("retry", {RUBY_RETRY: time.time() + 50})
    r.zadd("dead", {RUBY_JOB: time.time()})
    r.set("stat:processed", 120)
    r.set("stat:failed", 7)
    r.sadd("processes", "h:1:aaa", "h:2:bbb")
    r.hset("h:1:aaa", mapping={"info": "{}", "busy": 3})
    r.hset("h:2:bbb", mapping={"info": "{}", "busy": 2})
    s = Stats(config).summary()
    assert (s.processed, s.failed) == (120, 7)
    assert (s.scheduled_size, s.retry_size, s.dead_size) == (1, 1, 1)
    assert s.enqueued == 5
    assert s.queues == {"default": 4, "other": 1}
    assert s.processes_size == 2
    assert s.busy == 5
    assert 0 <= s.default_queue_latency < 60
    stats = Stats(config)
    assert stats.processed() == 120 and stats.failed() == 7
    assert stats.enqueued() == 5 and stats.busy() == 5
    stats.reset("failed")
    assert stats.failed() == 0 and stats.processed() == 120


def test_stats_history_reads_daily_keys_newest_first(r: redis.Redis, config: Config) -> None:
    today = datetime.now(UTC).date()
    r.set(f"stat:processed:{today.isoformat()}", 10)
    r.set(f"stat:processed:{(today - timedelta(days=2)).isoformat()}", 30)
    r.set(f"stat:failed:{(today - timedelta(days=1)).isoformat()}", 4)
    h = Stats(config).history(3)
    assert list(h.processed.values()) == [10, 0, 30]
    assert list(h.failed.values()) == [0, 4, 0]
    assert next(iter(h.processed)) == today.isoformat()
    h2 = Stats(config).history(2, start=date(2020, 1, 2))
    assert list(h2.processed) == ["2020-01-02", "2020-01-01"]


def test_a_namespace_prefixes_every_key(r: redis.Redis, config: Config) -> None:
    ns = config.replace(namespace="app")
    Client(ns, hooks=Hooks()).push({"class": "A", "args": []})
    assert Queue("default", ns).size() == 1
    assert Queue("default", config).size() == 0
    assert Stats(redis=r, keys=Keys("app")).summary().enqueued == 1


# --- sorted sets ----------------------------------------------------------------------
def test_retry_set_reads_sidekiq_6_and_8_entries(r: redis.Redis, config: Config) -> None:
    r.zadd("retry", {RUBY_RETRY: 1795869100.25, SK8_RETRY: 1754000024.87})
    rs = RetrySet(config)
    assert rs.size() == 2
    first, second = rs.entries()
    assert first.score == 1754000024.87
    assert first.record.failed_at == pytest.approx(1754000001.010)
    assert first.record.created_at == pytest.approx(1754000000.123)
    assert first.record.error_class == "RuntimeError"
    assert second.record.retry_count == 1
    assert second.record.error_message == "boom 7"
    assert [e.jid for e in rs.entries(reverse=True)] == [second.jid, first.jid]
    found = rs.find_job("573528414260915c54e46568")
    assert found is not None and found.raw == RUBY_RETRY.encode()
    assert rs.find_job("ffffffffffffffffffffffff") is None
    assert [e.jid for e in rs.fetch(1795869100.25)] == ["573528414260915c54e46568"]


def test_retry_now_decrements_refreshes_enqueued_at_and_runs_client_middleware(
    r: redis.Redis, config: Config
) -> None:
    r.zadd("retry", {RUBY_RETRY: time.time() + 500})
    seen: list[str] = []
    hooks = Hooks()

    def mark(name: str, payload: dict[str, Any], queue: str, call_next: Any) -> Any:
        seen.append(name)
        payload["marked"] = True
        return call_next()

    hooks.client_middleware.append(mark)
    entry = RetrySet(config, hooks=hooks).find_job("573528414260915c54e46568")
    assert entry is not None
    before = time.time()
    assert entry.retry()
    assert r.zcard("retry") == 0
    assert r.smembers("queues") == {b"other"}
    [raw] = r.lrange("queue:other", 0, -1)
    job = loads(raw)
    assert job["retry_count"] == 0
    assert job["enqueued_at"] >= before
    assert job["created_at"] == 1795869059.9206307
    assert job["jid"] == "573528414260915c54e46568"
    assert job["marked"] is True and seen == ["FailJob"]
    # The entry is gone: a second retry does nothing (no duplicate push).
    assert not entry.retry()
    assert r.llen("queue:other") == 1


def test_add_to_queue_keeps_the_retry_count(r: redis.Redis, config: Config,
                                           client: Client) -> None:
    client.push({"class": "Later", "args": [1], "at": time.time() + 3600})
    ss = ScheduledSet(config)
    [entry] = ss.entries()
    assert "enqueued_at" not in entry.payload
    assert entry.add_to_queue()
    job = loads(r.lindex("queue:default", 0))
    assert job["class"] == "Later" and "retry_count" not in job
    assert isinstance(job["enqueued_at"], float)
    assert ss.size() == 0


def test_delete_removes_only_the_exact_member(r: redis.Redis, config: Config) -> None:
    r.zadd("retry", {RUBY_RETRY: 100.0, SK8_RETRY: 100.0})
    rs = RetrySet(config)
    [a, b] = rs.fetch(100.0)
    assert a.delete()
    assert not a.delete()
    assert [e.raw for e in rs.entries()] == [b.raw]


def test_kill_moves_to_dead_trims_and_calls_death_handlers(r: redis.Redis,
                                                            config: Config) -> None:
    small = config.replace(dead_max_jobs=2)
    recent = time.time() - 100
    for i in range(3):
        r.zadd("dead", {json.dumps({"class": "Old", "args": [i], "jid": f"{i:024d}"}): recent + i})
    r.zadd("retry", {RUBY_RETRY: time.time() + 60})
    died: list[tuple[str, BaseException]] = []
    hooks = Hooks()
    hooks.death_handlers.append(lambda payload, exc: died.append((payload["jid"], exc)))
    entry = RetrySet(small, hooks=hooks).find_job("573528414260915c54e46568")
    assert entry is not None
    before = time.time()
    assert entry.kill()
    assert r.zcard("retry") == 0
    dead = r.zrange("dead", 0, -1, withscores=True)
    # Trimmed to the newest dead_max_jobs, the killed job (scored now) included.
    assert len(dead) == 2
    assert dead[-1][0] == RUBY_RETRY.encode()
    assert dead[-1][1] >= before
    assert [d[0] for d in died] == ["573528414260915c54e46568"]
    assert isinstance(died[0][1], JobKilled)
    # Gone already: a second kill adds nothing and calls no handler.
    assert not entry.kill()
    assert len(died) == 1 and r.zcard("dead") == 2


def test_kill_of_a_member_removed_meanwhile_adds_no_ghost(r: redis.Redis,
                                                          config: Config) -> None:
    r.zadd("retry", {RUBY_RETRY: 5.0})
    [entry] = RetrySet(config).entries()
    r.zrem("retry", RUBY_RETRY)
    assert not entry.kill()
    assert r.zcard("dead") == 0


def test_retry_all_kill_all_delete_all(r: redis.Redis, config: Config) -> None:
    now = time.time()
    for i in range(250):
        r.zadd("retry", {json.dumps({"class": "F", "args": [i], "queue": "q", "jid": f"{i:024x}",
                                     "retry_count": 3}): now + i})
    r.zadd("retry", {b"not json at all": now})
    rs = RetrySet(config)
    assert rs.retry_all() == 250
    assert r.llen("queue:q") == 250
    assert all(loads(raw)["retry_count"] == 2 for raw in r.lrange("queue:q", 0, -1))
    # The garbage member stays: nothing could run it.
    assert r.zrange("retry", 0, -1) == [b"not json at all"]
    for i in range(120):
        r.zadd("retry", {json.dumps({"class": "F", "args": [i], "jid": f"{i:024x}"}): now})
    assert rs.kill_all(notify=False) == 121
    assert r.zcard("retry") == 0 and r.zcard("dead") == 121
    DeadSet(config).delete_all()
    assert not r.exists("dead")


def test_dead_set_retry_decrements_like_sidekiq(r: redis.Redis, config: Config) -> None:
    r.zadd("dead", {SK8_RETRY: time.time()})
    [entry] = DeadSet(config).entries()
    assert entry.retry()
    job = loads(r.lindex("queue:default", 0))
    assert job["retry_count"] == -1  # Sidekiq: retry_count -= 1 whatever the set
    assert job["created_at"] == 1754000000123  # kept in the writer's unit


def test_reschedule_changes_the_score_only_while_present(r: redis.Redis,
                                                         config: Config) -> None:
    r.zadd("schedule", {RUBY_JOB: 10.0})
    [entry] = ScheduledSet(config).entries()
    assert entry.reschedule(20.5)
    assert r.zscore("schedule", RUBY_JOB) == 20.5
    r.zrem("schedule", RUBY_JOB)
    assert not entry.reschedule(30.0)
    assert r.zcard("schedule") == 0


# --- processes and running jobs ----------------------------------------------------------
SK64_INFO = {
    "hostname": "vm", "started_at": 1795869060.1448326, "pid": 9613, "tag": "probe",
    "concurrency": 2, "queues": ["default", "other"], "labels": [],
    "identity": "vm:9613:72478f4d7a49",
}


def test_process_set_reads_a_roadie_heartbeat(r: redis.Redis, config: Config) -> None:
    cfg = config.replace(concurrency=7, tag="shop", labels=("blue",),
                         queues=(("critical", 2), ("default", 1)))
    state = State(IDENTITY)
    hb = Heartbeat(r, cfg, Keys(), state, Outage("redis://test"),
                   on_signal=lambda s: None, on_first_beat=lambda: None)
    state.start_work("abc", "critical", RUBY_JOB.encode())
    assert hb.beat()
    [proc] = ProcessSet(config).processes()
    assert proc.identity == IDENTITY
    assert (proc.hostname, proc.pid) == ("testhost", 4242)
    assert proc.tag == "shop" and proc.labels == ["blue"]
    assert proc.concurrency == 7 and proc.busy == 1
    assert proc.queues == ["critical", "default"]
    assert not proc.is_quiet and proc.is_roadie
    assert proc.version.startswith("roadie")
    assert proc.started_at == pytest.approx(state.started_at)
    assert proc.beat == pytest.approx(time.time(), abs=30)
    assert proc.rss_kb > 0
    [work] = Workers(config).entries()
    assert (work.identity, work.tid, work.queue) == (IDENTITY, "abc", "critical")
    assert work.record.raw == RUBY_JOB.encode() and work.display_class == "OkJob"
    assert Workers(config).size() == 1
    state.quiet.set()
    hb.beat()
    assert ProcessSet(config).get(IDENTITY).is_quiet  # type: ignore[union-attr]


def test_process_set_reads_sidekiq_64_and_81_hashes(r: redis.Redis, config: Config) -> None:
    # 6.4: concurrency only inside info; work under :workers.
    r.sadd("processes", "vm:9613:72478f4d7a49")
    r.hset("vm:9613:72478f4d7a49", mapping={
        "info": json.dumps(SK64_INFO), "busy": 1, "beat": "1795869065.1481373",
        "quiet": "false", "rss": 51234, "rtt_us": 250})
    r.hset("vm:9613:72478f4d7a49:workers", "6ct", json.dumps(
        {"queue": "default", "payload": RUBY_JOB, "run_at": 1795869060}))
    # 8.1.2+: concurrency only as a hash field; payload embedded as an object.
    info8 = {"hostname": "k8s", "started_at": 1754000000.5, "pid": 7, "tag": "",
             "queues": ["default"], "labels": ["x"], "identity": "k8s:7:0123456789ab",
             "version": "8.1.7", "embedded": False}
    r.sadd("processes", "k8s:7:0123456789ab")
    r.hset("k8s:7:0123456789ab", mapping={
        "info": json.dumps(info8), "busy": 1, "beat": "1754000100.25", "quiet": "true",
        "rss": 1, "rtt_us": 1, "concurrency": 5})
    r.hset("k8s:7:0123456789ab:work", "x1", json.dumps(
        {"queue": "default", "payload": loads(SK8_RETRY.encode()), "run_at": 1754000090}))
    # A member whose hash expired: not live, and pruned.
    r.sadd("processes", "gone:1:ffffffffffff")
    ps = ProcessSet(config)
    assert ps.size() == 3
    procs = {p.identity: p for p in ps.processes()}
    assert set(procs) == {"vm:9613:72478f4d7a49", "k8s:7:0123456789ab"}
    old, new = procs["vm:9613:72478f4d7a49"], procs["k8s:7:0123456789ab"]
    assert (old.concurrency, old.busy, old.pid, old.tag) == (2, 1, 9613, "probe")
    assert old.queues == ["default", "other"] and not old.is_quiet and not old.is_roadie
    assert old.rss_kb == 51234 and old.beat == 1795869065.1481373
    assert (new.concurrency, new.is_quiet, new.version, new.labels) == (5, True, "8.1.7", ["x"])
    assert ps.total_concurrency() == 7
    works = Workers(config).entries()
    assert [(w.identity, w.tid) for w in works] == [
        ("k8s:7:0123456789ab", "x1"), ("vm:9613:72478f4d7a49", "6ct")]
    assert works[0].jid == "b4a577edbccf1d805744efa9" and works[0].run_at == 1754000090
    assert works[1].record.args == [1, "two", {"three": 3.5}, [True, None]]
    assert ps.prune() == 1
    assert r.smembers("processes") == {b"vm:9613:72478f4d7a49", b"k8s:7:0123456789ab"}
    # The once-a-minute form takes Sidekiq's process_cleanup lock.
    r.sadd("processes", "gone:2:ffffffffffff")
    assert ps.prune(once_a_minute=True) == 1
    r.sadd("processes", "gone:3:ffffffffffff")
    assert ps.prune(once_a_minute=True) == 0
    assert 0 < r.ttl("process_cleanup") <= 60


def test_quiet_and_stop_push_signals_with_a_ttl(r: redis.Redis, config: Config) -> None:
    r.sadd("processes", "vm:1:abc")
    r.hset("vm:1:abc", mapping={"info": json.dumps({"identity": "vm:1:abc"}), "busy": 0})
    [proc] = ProcessSet(config).processes()
    proc.quiet()
    proc.stop()
    assert r.lrange("vm:1:abc-signals", 0, -1) == [b"TERM", b"TSTP"]
    assert 0 < r.ttl("vm:1:abc-signals") <= 60
    # The heartbeat pops the oldest first (RPOP): TSTP, then TERM.
    assert r.rpop("vm:1:abc-signals") == b"TSTP"
    assert ProcessSet(config).quiet_all() == 1
    assert r.lrange("vm:1:abc-signals", 0, -1) == [b"TSTP", b"TERM"]


def test_a_roadie_process_obeys_a_quiet_sent_through_the_api(r: redis.Redis,
                                                              config: Config) -> None:
    from roadie.registry import Registry
    from roadie.server.launcher import Launcher

    cfg = config.replace(heartbeat_interval_s=0.05, concurrency=2)
    launcher = Launcher(cfg, hooks=Hooks(), registry=Registry())
    launcher.start()
    try:
        [proc] = ProcessSet(config).processes()
        assert proc.identity == launcher.identity and proc.concurrency == 2
        proc.quiet()
        wait_until(launcher.quiet_requested.is_set, 10, message="TSTP not received")
        launcher.quiet()
        def shown_quiet() -> bool:
            seen = ProcessSet(config).get(launcher.identity)
            return seen is not None and seen.is_quiet

        wait_until(shown_quiet, 10, message="quiet not shown")
        proc.stop()
        wait_until(launcher.stop_requested.is_set, 10, message="TERM not received")
    finally:
        launcher.stop()
    assert ProcessSet(config).get(launcher.identity) is None


def test_work_entries_survive_odd_values(r: redis.Redis, config: Config) -> None:
    r.sadd("processes", "p:1:a")
    r.hset("p:1:a", mapping={"info": "{}", "busy": 2})
    r.hset("p:1:a:work", mapping={
        "t1": b"not json",
        "t2": orjson.dumps({"queue": "q", "payload": "also not json", "run_at": 5}),
    })
    [work] = Workers(config).entries()
    assert work.tid == "t2" and work.queue == "q" and work.record.parse_error is not None
