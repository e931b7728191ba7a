"""Ruby pushes, roadie runs: a Rails app's jobs handled by a Python process.

Jobs are pushed by real Ruby code (Sidekiq 6.4.1's ``Client.push``, ``push_bulk``,
``perform_in``, ``perform_at`` and ActiveJob-shaped payloads) and run by a real
``roadie run`` process. Failures land in ``retry`` in a shape Sidekiq's own API
reads, and Sidekiq's API acts on them (retry, delete, kill).
"""

from __future__ import annotations

import json
import time

import redis
from interop_harness import (
    PY_QUEUE,
    Fleet,
    counts,
    require_sidekiq,
    ruby_push,
    sidekiq_api,
    wait_counts,
)
from support.wait import poll

from roadie.api import Queue, RetrySet

require_sidekiq()

#: Arguments of every kind JSON carries, to compare what Python receives.
EXTRA = [{"w": 640, "h": 480, "name": "café/ü", "ratio": 1.5}, [True, None, -3, "x"]]


def _labels(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_1000_ruby_pushed_jobs_run_exactly_once_in_roadie(
    fleet: Fleet, r: redis.Redis, redis_url: str
) -> None:
    roadie_proc = fleet.roadie(PY_QUEUE, concurrency=10, r=r)
    n = 250
    t0 = time.time()
    at = t0 + 2.0
    pushed = ruby_push(
        redis_url,
        {"op": "each", "class": "ResizeImage", "queue": PY_QUEUE,
         "args": [[lb, *EXTRA] for lb in _labels("p", n)]},
        {"op": "push_bulk", "class": "ResizeImage", "queue": PY_QUEUE,
         "args": [[lb, *EXTRA] for lb in _labels("b", n)]},
        {"op": "perform_in", "class": "ResizeImage", "queue": PY_QUEUE, "seconds": 1.5,
         "args_list": [[lb, *EXTRA] for lb in _labels("i", n)]},
        {"op": "perform_at", "class": "ResizeImage", "queue": PY_QUEUE, "at": at,
         "args_list": [[lb, *EXTRA] for lb in _labels("a", n)]},
    )
    pushed_at = time.time()
    jids = {j for group in pushed for j in group}
    assert len(jids) == 4 * n

    ran = wait_counts(r, "interop:py:ran", 4 * n, timeout=60, what="Ruby -> roadie")
    elapsed = time.time() - t0
    ran_at = {k.decode(): float(v) for k, v in r.hgetall("interop:py:ran_at").items()}
    now_done = max(ran_at[lb] for lb in _labels("p", n) + _labels("b", n)) - t0
    print(f"\n[interop] 1,000 jobs Ruby -> roadie: pushed in {pushed_at - t0:.2f}s; the 500 "
          f"immediate ones done {now_done:.2f}s and all {elapsed:.2f}s after the push started")
    assert len(ran) == 4 * n and set(ran.values()) == {1}
    assert {j.decode() for j in r.hvals("interop:py:jid")} == jids
    args = {k.decode(): json.loads(v) for k, v in r.hgetall("interop:py:args").items()}
    assert all(args[lb] == [lb, *EXTRA] for lb in ran)
    # Scheduled jobs did not run early.
    assert min(ran_at[lb] for lb in _labels("a", n)) >= at - 0.01
    assert min(ran_at[lb] for lb in _labels("i", n)) >= t0 + 1.5 - 0.01

    # Nothing is left anywhere, and a clean stop flushes the stats Sidekiq reads.
    assert r.llen(f"queue:{PY_QUEUE}") == 0
    assert (r.zcard("schedule"), r.zcard("retry"), r.zcard("dead")) == (0, 0, 0)
    assert roadie_proc.stop() == 0
    assert counts(r, "interop:py:ran") == ran
    [stats] = sidekiq_api(redis_url, {"op": "stats"})
    assert stats["processed"] == 4 * n and stats["failed"] == 0
    assert stats["processes_size"] == 0


def test_a_failure_lands_in_retry_as_sidekiq_reads_it_and_ruby_retries_it(
    fleet: Fleet, r: redis.Redis, redis_url: str
) -> None:
    fleet.roadie(PY_QUEUE, concurrency=2, r=r)
    [jid] = ruby_push(redis_url, {"op": "push", "class": "FlakyJob", "queue": PY_QUEUE,
                                  "args": ["flaky1"], "options": {"backtrace": True}})
    poll(lambda: r.zcard("retry") == 1, 20, "the failure did not reach the retry set")
    [raw] = r.zrange("retry", 0, -1)
    stored = json.loads(raw)
    assert isinstance(stored["failed_at"], float) and isinstance(stored["created_at"], float)

    poll(lambda: r.get("stat:failed") == b"1", 10, "failed count not flushed")
    [entries, stats, history] = sidekiq_api(
        redis_url, {"op": "set", "name": "retry"}, {"op": "stats"}, {"op": "history", "days": 1})
    [entry] = entries
    assert entry["jid"] == jid and entry["class"] == "FlakyJob"
    assert entry["queue"] == PY_QUEUE and entry["args"] == ["flaky1"]
    assert entry["error_class"] == "ValueError"
    assert entry["error_message"] == "flaky flaky1: first attempt fails"
    assert entry["retry_count"] == 0 and entry["error?"] is True
    # Next attempt: Sidekiq's backoff for a first failure, 15 s + jitter below 10 s.
    assert 15 <= entry["at"] - entry["failed_at"] < 25
    assert entry["at"] == entry["score"]
    # Ruby decodes roadie's compressed backtrace.
    assert entry["error_backtrace"] and "interop_pyjobs.py" in entry["error_backtrace"][0]
    assert stats["retry_size"] == 1 and stats["failed"] == 1 and stats["processed"] == 1
    assert sum(history["failed"].values()) == 1

    # "Retry now" from Ruby: roadie runs it again, and this time it succeeds.
    assert sidekiq_api(redis_url, {"op": "retry", "set": "retry", "jid": jid}) == [True]
    wait_counts(r, "interop:py:ran", 1, timeout=20, what="retried job")
    assert counts(r, "interop:py:attempts") == {"flaky1": 2}
    assert r.hget("interop:py:jid", "flaky1") == jid.encode()
    assert r.zcard("retry") == 0
    poll(lambda: r.get("stat:processed") == b"2", 10, "processed count not flushed")
    [stats] = sidekiq_api(redis_url, {"op": "stats"})
    assert (stats["processed"], stats["failed"], stats["retry_size"]) == (2, 1, 0)


def test_ruby_deletes_and_kills_roadie_retry_entries(
    fleet: Fleet, r: redis.Redis, redis_url: str
) -> None:
    fleet.roadie(PY_QUEUE, concurrency=2, r=r)
    jids = ruby_push(
        redis_url,
        {"op": "push", "class": "AlwaysFails", "queue": PY_QUEUE, "args": ["del"],
         "options": {"retry": 5}},
        {"op": "push", "class": "AlwaysFails", "queue": PY_QUEUE, "args": ["kill"],
         "options": {"retry": 5}},
    )
    poll(lambda: r.zcard("retry") == 2, 20, "failures did not reach the retry set")
    by_jid = {e.jid: e.raw for e in RetrySet(redis=r).entries()}
    assert set(by_jid) == set(jids)
    results = sidekiq_api(
        redis_url,
        {"op": "delete", "set": "retry", "jid": jids[0]},
        {"op": "kill", "set": "retry", "jid": jids[1]},
        {"op": "set", "name": "dead"},
    )
    assert results[1] is True
    assert r.zcard("retry") == 0
    # The killed entry is in dead byte for byte; the deleted one is nowhere.
    assert r.zrange("dead", 0, -1) == [by_jid[jids[1]]]
    [dead] = results[2]
    assert dead["jid"] == jids[1] and dead["class"] == "AlwaysFails"
    assert dead["error_class"] == "RuntimeError" and dead["error_message"] == "always fails kill"

    # Retried from the dead set by Ruby, roadie runs it again (and it fails again).
    sidekiq_api(redis_url, {"op": "retry", "set": "dead", "jid": jids[1]})
    poll(lambda: r.zcard("retry") == 1, 20, "the job retried from dead did not run")
    assert counts(r, "interop:py:attempts") == {"del": 1, "kill": 2}
    assert r.zcard("dead") == 0


def test_activejob_payloads_reach_the_python_job_of_the_wrapped_class(
    fleet: Fleet, r: redis.Redis, redis_url: str
) -> None:
    arguments6 = [{"label": "aj6", "size": 64, "_aj_symbol_keys": ["label", "size"]}, "x"]
    arguments8 = [{"label": "aj8", "size": 128, "_aj_symbol_keys": []}, 2.5]
    jids = ruby_push(
        redis_url,
        {"op": "activejob", "wrapper": "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper",
         "wrapped": "Images::ThumbnailJob", "queue": PY_QUEUE, "arguments": arguments6},
        {"op": "activejob", "wrapper": "Sidekiq::ActiveJob::Wrapper",
         "wrapped": "Images::ThumbnailJob", "queue": PY_QUEUE, "arguments": arguments8},
    )
    # roadie's api shows them unwrapped before they run.
    records = Queue(PY_QUEUE, redis=r).entries()
    assert [rec.display_class for rec in records] == ["Images::ThumbnailJob"] * 2
    assert [rec.display_args for rec in reversed(records)] == [arguments6, arguments8]

    fleet.roadie(PY_QUEUE, concurrency=2, r=r)
    ran = wait_counts(r, "interop:py:ran", 2, timeout=20, what="ActiveJob payloads")
    assert ran == {"aj6": 1, "aj8": 1}
    args = {k.decode(): json.loads(v) for k, v in r.hgetall("interop:py:args").items()}
    assert args == {"aj6": arguments6, "aj8": arguments8}
    assert {j.decode() for j in r.hvals("interop:py:jid")} == set(jids)
