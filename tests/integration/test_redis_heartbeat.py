"""server.heartbeat.Heartbeat: the keys Sidekiq's Web UI reads (SIDEKIQ-WIRE.md section 8)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis
from integration_support import IDENTITY

from roadie.config import Config
from roadie.embedded import RedisServer
from roadie.keys import Keys
from roadie.redis.connection import connect
from roadie.server.heartbeat import Heartbeat
from roadie.server.outage import Outage
from roadie.server.state import State

FIVE_YEARS_S = 157_680_000


class Beating:
    """A heartbeat plus what its callbacks received."""

    def __init__(self, r: redis.Redis, config: Config, identity: str = IDENTITY) -> None:
        self.state = State(identity)
        self.signals: list[str] = []
        self.first_beats = 0
        self.hb = Heartbeat(
            r, config, Keys(config.namespace), self.state, Outage("redis://test"),
            on_signal=self.signals.append, on_first_beat=self._first,
        )

    def _first(self) -> None:
        self.first_beats += 1


@pytest.fixture
def config(config: Config) -> Config:
    return config.replace(
        queues=(("critical", 2), ("default", 1)), concurrency=7, tag="shop",
        labels=("blue",), process_ttl_s=15.0,
    )


@pytest.fixture
def beating(r: redis.Redis, config: Config) -> Beating:
    return Beating(r, config)


def fields(r: redis.Redis, key: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in r.hgetall(key).items()}


def test_beat_writes_processes_and_the_identity_hash(
    r: redis.Redis, beating: Beating
) -> None:
    t0 = time.time()
    assert beating.hb.beat() is True
    t1 = time.time()

    assert r.smembers("processes") == {IDENTITY.encode()}
    h = fields(r, IDENTITY)
    assert set(h) == {"info", "busy", "beat", "quiet", "rss", "rtt_us", "concurrency"}
    assert h["busy"] == "0"
    assert h["quiet"] == "false"
    assert h["concurrency"] == "7"
    assert "." in h["beat"] and t0 <= float(h["beat"]) <= t1
    assert int(h["rtt_us"]) >= 0
    if os.path.exists("/proc/self/status"):
        assert int(h["rss"]) > 0
    assert 55 <= r.ttl(IDENTITY) <= 60


def test_info_describes_the_process(r: redis.Redis, beating: Beating) -> None:
    beating.hb.beat()

    info: dict[str, Any] = orjson.loads(r.hget(IDENTITY, "info"))
    assert info["hostname"] == "testhost"
    assert info["pid"] == 4242
    assert info["identity"] == IDENTITY
    assert info["concurrency"] == 7
    assert info["queues"] == ["critical", "default"]
    assert info["weights"] == [{"critical": 2, "default": 1}]
    assert info["tag"] == "shop"
    assert info["labels"] == ["blue"]
    assert info["started_at"] == beating.state.started_at
    assert isinstance(info["started_at"], float)


def test_quiet_is_written_as_the_string_true(r: redis.Redis, beating: Beating) -> None:
    beating.state.quiet.set()

    beating.hb.beat()

    assert r.hget(IDENTITY, "quiet") == b"true"


def test_running_jobs_fill_both_work_hashes(r: redis.Redis, beating: Beating) -> None:
    raw = b'{"retry":true,"queue":"critical","args":[],"class":"A","jid":"abc"}'
    beating.state.start_work("t1", "critical", raw)
    t0 = int(time.time())

    beating.hb.beat()

    assert r.hget(IDENTITY, "busy") == b"1"
    for key in (f"{IDENTITY}:work", f"{IDENTITY}:workers"):
        [(tid, value)] = r.hgetall(key).items()
        assert tid == b"t1"
        entry = orjson.loads(value)
        assert list(entry) == ["queue", "payload", "run_at"]
        assert entry["queue"] == "critical"
        assert entry["payload"] == raw.decode()
        assert isinstance(entry["run_at"], int) and t0 - 1 <= entry["run_at"] <= time.time()
        assert 55 <= r.ttl(key) <= 60

    beating.state.end_work("t1")
    beating.hb.beat()

    assert r.exists(f"{IDENTITY}:work", f"{IDENTITY}:workers") == 0
    assert r.hget(IDENTITY, "busy") == b"0"


def test_stats_are_flushed_with_daily_keys(r: redis.Redis, beating: Beating) -> None:
    for failed in (False, False, True, False):
        beating.state.count(failed=failed)

    beating.hb.beat()

    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert r.get("stat:processed") == b"4"
    assert r.get(f"stat:processed:{day}") == b"4"
    assert r.get("stat:failed") == b"1"
    assert r.get(f"stat:failed:{day}") == b"1"
    for key in (f"stat:processed:{day}", f"stat:failed:{day}"):
        assert FIVE_YEARS_S - 5 <= r.ttl(key) <= FIVE_YEARS_S
    assert r.ttl("stat:processed") == -1
    assert beating.state.take_counts() == (0, 0)

    beating.state.count(failed=False)
    beating.hb.beat()
    beating.hb.beat()  # nothing new: no double counting

    assert r.get("stat:processed") == b"5"
    assert r.get("stat:failed") == b"1"


def test_no_failures_means_no_failed_keys(r: redis.Redis, beating: Beating) -> None:
    beating.state.count(failed=False)

    beating.hb.beat()

    assert r.get("stat:processed") == b"1"
    assert r.keys("stat:failed*") == []


def test_one_signal_is_popped_per_beat_oldest_first(r: redis.Redis, beating: Beating) -> None:
    r.lpush(f"{IDENTITY}-signals", "TSTP", "TERM")

    beating.hb.beat()
    assert beating.signals == ["TSTP"]
    assert r.lrange(f"{IDENTITY}-signals", 0, -1) == [b"TERM"]

    beating.hb.beat()
    beating.hb.beat()
    assert beating.signals == ["TSTP", "TERM"]


def test_first_beat_hook_fires_when_the_hash_is_new(r: redis.Redis, beating: Beating) -> None:
    beating.hb.beat()
    beating.hb.beat()
    assert beating.first_beats == 1

    r.delete(IDENTITY)  # expired, e.g. after a long network partition
    beating.hb.beat()
    assert beating.first_beats == 2


def test_liveness_key_and_inflight_owner(
    r: redis.Redis, config: Config, beating: Beating
) -> None:
    beating.hb.beat()

    assert r.get(f"roadie:alive:{IDENTITY}") == b"1"
    assert 14_000 <= r.pttl(f"roadie:alive:{IDENTITY}") <= 15_000
    assert r.smembers("roadie:inflight-owners") == {IDENTITY.encode()}


def test_clear_leaves_the_registry_and_flushes_stats(r: redis.Redis, beating: Beating) -> None:
    beating.state.start_work("t1", "default", b"{}")
    beating.hb.beat()
    beating.state.end_work("t1")
    beating.state.count(failed=True)

    beating.hb.clear()

    assert r.smembers("processes") == set()
    assert r.exists(f"{IDENTITY}:work", f"{IDENTITY}:workers", f"roadie:alive:{IDENTITY}") == 0
    assert r.get("stat:failed") == b"1" and r.get("stat:processed") == b"1"
    # The owner entry stays for the janitor (it forgets empty lists): a job fetched
    # at the very last moment of a hard stop is still found.
    assert r.smembers("roadie:inflight-owners") == {IDENTITY.encode()}
    assert r.exists(IDENTITY) == 1  # left to expire, as Sidekiq does


def test_clear_keeps_the_owner_while_jobs_are_in_flight(
    r: redis.Redis, beating: Beating
) -> None:
    beating.hb.beat()
    r.lpush(f"roadie:inflight:{IDENTITY}", b"job")

    beating.hb.clear()

    assert r.smembers("roadie:inflight-owners") == {IDENTITY.encode()}


def test_prune_drops_processes_whose_hash_expired_once_a_minute(
    r: redis.Redis, beating: Beating
) -> None:
    beating.hb.beat()  # the beat prunes too, and takes the once-a-minute lock
    r.sadd("processes", "killed:1:aaaaaaaaaaaa", "killed:2:bbbbbbbbbbbb")
    r.hset("killed:2:bbbbbbbbbbbb", "busy", 0)  # a hash without info is not live

    assert beating.hb.prune() == 0  # the lock is held for 60 s
    r.delete("process_cleanup")
    assert beating.hb.prune() == 2

    assert r.smembers("processes") == {IDENTITY.encode()}
    assert 0 < r.ttl("process_cleanup") <= 60


def test_namespace_prefixes_every_heartbeat_key(r: redis.Redis, config: Config) -> None:
    b = Beating(r, config.replace(namespace="ns"))
    b.state.start_work("t1", "default", b"{}")
    b.state.count(failed=False)
    r.lpush(f"ns:{IDENTITY}-signals", "TTIN")

    b.hb.beat()

    assert all(k.startswith(b"ns:") for k in r.keys())
    assert r.smembers("ns:processes") == {IDENTITY.encode()}
    assert r.exists(f"ns:{IDENTITY}", f"ns:{IDENTITY}:work", f"ns:roadie:alive:{IDENTITY}") == 3
    assert b.signals == ["TTIN"]


def test_beat_during_an_outage_keeps_the_counts(
    redis_server: RedisServer, config: Config
) -> None:
    private = config.replace(redis_url=redis_server.url, socket_timeout_s=1.0,
                             connect_timeout_s=1.0)
    client = connect(private)
    b = Beating(client, private)
    b.state.count(failed=True)
    redis_server.stop()

    assert b.hb.beat() is False
    assert b.hb.outage.down

    redis_server.start()
    assert b.hb.beat() is True
    assert not b.hb.outage.down
    assert client.get("stat:processed") == b"1" and client.get("stat:failed") == b"1"
