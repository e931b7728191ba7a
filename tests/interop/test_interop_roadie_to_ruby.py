"""roadie pushes, Sidekiq runs; roadie's api reads and steers a Sidekiq process.

Jobs pushed from Python (``roadie.push`` by name, ``perform_in``, ``perform_at``,
bulk) are run by a real Sidekiq 6.4.1 process. Then roadie's read/admin layer is
pointed at that Sidekiq: its process, its running job, its retries and dead jobs,
and the actions a dashboard takes on them.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import redis
from interop_harness import (
    PY_QUEUE,
    RB_QUEUE,
    Fleet,
    counts,
    require_sidekiq,
    sidekiq_api,
    wait_counts,
)
from support.wait import poll

import roadie
from roadie.api import DeadSet, ProcessSet, RetrySet, Stats, Workers
from roadie.registry import Registry

require_sidekiq()

EXTRA = [{"w": 640, "h": 480, "name": "café/ü", "ratio": 1.5}, [True, None, -3, "x"]]


class HardJob(roadie.Job, name="HardJob", queue=RB_QUEUE, registry=Registry()):
    """The Python view of a job implemented in Ruby: push only, never run here."""

    def perform(self, *args: Any) -> None:
        raise NotImplementedError("HardJob runs in Ruby")


def test_1000_roadie_pushed_jobs_run_exactly_once_in_sidekiq(
    fleet: Fleet, r: redis.Redis, redis_url: str, pyclient: roadie.Client
) -> None:
    sidekiq = fleet.sidekiq(RB_QUEUE, concurrency=5, r=r)
    n = 250
    t0 = time.time()
    at = t0 + 2.0
    jids: list[str | None] = []
    jids += [roadie.push("HardJob", [f"p{i}", *EXTRA], queue=RB_QUEUE) for i in range(n)]
    jids += [HardJob.perform_in(1.5, f"i{i}", *EXTRA) for i in range(n)]
    jids += [roadie.push("HardJob", [f"a{i}", *EXTRA], queue=RB_QUEUE, at=at) for i in range(n)]
    jids += HardJob.perform_bulk([[f"b{i}", *EXTRA] for i in range(n)])
    pushed_at = time.time()
    assert len(set(jids)) == 4 * n and None not in jids

    ran = wait_counts(r, "interop:rb:ran", 4 * n, timeout=60, what="roadie -> Sidekiq")
    elapsed = time.time() - t0
    ran_at = {k.decode(): float(v) for k, v in r.hgetall("interop:rb:ran_at").items()}
    now_done = max(ran_at[f"{p}{i}"] for p in "pb" for i in range(n)) - t0
    print(f"\n[interop] 1,000 jobs roadie -> Sidekiq: pushed in {pushed_at - t0:.2f}s; the 500 "
          f"immediate ones done {now_done:.2f}s and all {elapsed:.2f}s after the push started")
    assert len(ran) == 4 * n and set(ran.values()) == {1}
    assert {j.decode() for j in r.hvals("interop:rb:jid")} == set(jids)
    args = {k.decode(): json.loads(v) for k, v in r.hgetall("interop:rb:args").items()}
    assert all(args[label] == [label, *EXTRA] for label in ran)
    # Scheduled jobs did not run early (Sidekiq's poller read roadie's schedule entries).
    assert min(ran_at[f"a{i}"] for i in range(n)) >= at - 0.01
    assert min(ran_at[f"i{i}"] for i in range(n)) >= t0 + 1.5 - 0.01
    assert r.llen(f"queue:{RB_QUEUE}") == 0
    assert (r.zcard("schedule"), r.zcard("retry"), r.zcard("dead")) == (0, 0, 0)

    assert sidekiq.stop() == 0
    assert counts(r, "interop:rb:ran") == ran
    # Sidekiq's counters, read by roadie's api.
    summary = Stats(redis=r).summary()
    assert (summary.processed, summary.failed) == (4 * n, 0)


def test_roadie_api_reads_and_steers_a_sidekiq_process(
    fleet: Fleet, r: redis.Redis, redis_url: str, pyclient: roadie.Client
) -> None:
    sidekiq = fleet.sidekiq(RB_QUEUE, concurrency=5, r=r, args=("-g", "interop"))
    py = fleet.roadie(PY_QUEUE, concurrency=2, r=r)
    assert sidekiq.identity is not None and py.identity is not None
    block_jid = roadie.push("BlockJob", ["blk"], queue=RB_QUEUE)
    # Pushed by name, a job carries only the options the pusher gives (as with
    # Ruby's Client.push of a class name): Sidekiq applies the class's `retry`
    # only when the payload has none, and its `backtrace` never.
    fail_jid = roadie.push("FailJob", ["f1"], queue=RB_QUEUE, backtrace=5)
    dead_jid = roadie.push("DeadJob", ["d1"], queue=RB_QUEUE, retry=0)
    poll(lambda: r.zcard("retry") == 1 and r.zcard("dead") == 1, 20,
         "Sidekiq's failures did not reach retry and dead")

    # Sidekiq's retry entry (6.4: float seconds, MIME base64 backtrace).
    [entry] = RetrySet(redis=r).entries()
    assert entry.jid == fail_jid and entry.record.klass == "FailJob"
    assert entry.record.error_class == "ArgumentError"
    assert entry.record.error_message == "boom f1"
    assert entry.record.retry_count == 0 and entry.record.queue == RB_QUEUE
    failed_at = entry.record.failed_at
    assert failed_at is not None and 15 <= entry.score - failed_at < 25
    trace = entry.record.error_backtrace
    assert len(trace) == 5 and "jobs.rb" in trace[0]
    [dead] = DeadSet(redis=r).entries()
    assert dead.jid == dead_jid and dead.record.error_class == "RuntimeError"
    assert dead.record.retry_count == 0 and dead.record.failed_at is not None

    # Its process and running job (Sidekiq 6.4 writes <identity>:workers every 5 s).
    def sidekiq_busy() -> Any:
        proc = ProcessSet(redis=r).get(sidekiq.identity or "")
        return proc if proc is not None and proc.busy == 1 else None

    proc = poll(sidekiq_busy, 15, "Sidekiq never showed a busy thread")
    assert (proc.hostname, proc.pid) == (socket.gethostname(), sidekiq.pid)
    assert proc.concurrency == 5 and proc.queues == [RB_QUEUE] and proc.tag == "interop"
    assert not proc.is_quiet and not proc.is_roadie
    assert proc.started_at is not None and abs(proc.started_at - time.time()) < 120
    [work] = poll(lambda: [w for w in Workers(redis=r).entries() if w.jid == block_jid], 15,
                  "Sidekiq's running job not listed")
    assert work.identity == sidekiq.identity and work.queue == RB_QUEUE
    assert work.display_class == "BlockJob" and work.record.args == ["blk"]
    assert abs(work.run_at - time.time()) < 60

    # Both processes, seen from both sides.
    ours = {p.identity for p in ProcessSet(redis=r).processes()}
    [theirs] = sidekiq_api(redis_url, {"op": "processes"})
    assert ours == {p["identity"] for p in theirs} == {sidekiq.identity, py.identity}

    # Actions from roadie's api on Sidekiq's entries: retry now, then kill.
    assert entry.retry()
    poll(lambda: r.hget("interop:rb:attempts", "f1") == b"2", 20,
         "Sidekiq did not run the job roadie retried")
    again = poll(lambda: RetrySet(redis=r).find_job(fail_jid), 20, "no second retry entry")
    assert again.kill()
    [dead_entries] = sidekiq_api(redis_url, {"op": "set", "name": "dead"})
    assert sorted(e["jid"] for e in dead_entries) == sorted([fail_jid, dead_jid])
    assert r.zcard("retry") == 0

    # Quiet, then stop, through roadie's api: Sidekiq obeys at its next beats.
    r.set("interop:release:blk", 1)
    wait_counts(r, "interop:rb:ran", 1, timeout=20, what="released BlockJob")
    ProcessSet(redis=r).get(sidekiq.identity).quiet()  # type: ignore[union-attr]

    def sidekiq_quiet() -> bool:
        seen = ProcessSet(redis=r).get(sidekiq.identity or "")
        return seen is not None and seen.is_quiet

    poll(sidekiq_quiet, 20, "Sidekiq did not turn quiet")
    ProcessSet(redis=r).get(sidekiq.identity).stop()  # type: ignore[union-attr]
    assert sidekiq.wait_exit(25) == 0
    assert {p.identity for p in ProcessSet(redis=r).processes()} == {py.identity}
