"""roadie/api/stats.py against a real Redis: the summary counts everything (queues,
sets, processes, busy, latency), the daily history, resetting a counter."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import redis
from integration_support import RUBY_JOB, RUBY_RETRY

from roadie.api import Stats
from roadie.client import Client
from roadie.config import Config


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
