"""roadie/api/queues.py against a real Redis: a queue's size, entries and latency
(float seconds or Sidekiq 8's milliseconds), deleting the exact raw entry, clearing.

Data comes from roadie itself (its client) and from payloads as Sidekiq writes them
(SIDEKIQ-WIRE.md: 6.4 captures, 8.x shapes), so the same readers are proven on both.
"""

from __future__ import annotations

import json
import time

import pytest
import redis
from integration_support import RUBY_JOB, loads

from roadie.api import Queue, queue_sizes, queues
from roadie.client import Client
from roadie.config import Config


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
