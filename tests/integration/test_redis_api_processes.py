"""roadie/api/processes.py against a real Redis: the process set read from a roadie
heartbeat and from Sidekiq 6.4 and 8.1 hashes (with their running jobs), pruned, and
quiet and stop sent to a process (a running roadie process obeys them)."""

from __future__ import annotations

import json
import time

import pytest
import redis
from integration_support import IDENTITY, RUBY_JOB, SK8_RETRY, loads
from support.wait import wait_until

from roadie.api import ProcessSet, Workers
from roadie.config import Config
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.server.heartbeat import Heartbeat
from roadie.server.outage import Outage
from roadie.server.state import State

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
