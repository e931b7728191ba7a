"""kill -9: a surviving process's janitor recovers the dead one's jobs; a job that
keeps killing its process ends in the dead set."""

from __future__ import annotations

import os
import signal
import time

import orjson
import pytest
import redis
import sysjobs
from support.procs import DEFAULT_ENV, Harness, Proc
from support.redis import left_anywhere
from support.wait import wait_until

import roadie

pytestmark = pytest.mark.system

EMPTY = {"queues": 0, "inflight": 0, "schedule": 0, "retry": 0, "dead": 0}


def test_kill_9_mid_job_is_recovered_within_30s_with_default_intervals(
    procs: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    # Production intervals: heartbeat 5 s, process_ttl 15 s, janitor 5 s.
    a = procs.spawn("-c", "2", env=DEFAULT_ENV, r=r)
    slow = sysjobs.Slow.perform_async(300)
    wait_until(lambda: sysjobs.events(r, "start"), 10, message="the slow job did not start")
    b = procs.spawn("-c", "2", env=DEFAULT_ENV, r=r)
    assert r.llen(f"roadie:inflight:{a.identity}") == 1

    killed_at = time.time()
    a.kill()
    r.set(sysjobs.RELEASE, 1)  # B's run of it may finish at once

    def back() -> bool:
        return len(sysjobs.events(r, "start")) == 2

    wait_until(back, 40, 0.1, "the killed process's job was not recovered within 40 s")
    first, second = sysjobs.events(r, "start")
    recovered_s = second["t"] - killed_at
    print(f"kill -9 -> job running again in the surviving process: {recovered_s:.1f}s "
          "(heartbeat 5 s, process_ttl 15 s, janitor 5 s)")
    assert recovered_s < 30.0
    assert (first["pid"], first["crashes"]) == (a.pid, 0)
    assert (second["pid"], second["crashes"]) == (b.pid, 1)

    wait_until(lambda: sysjobs.events(r, "done"), 10, message="the recovered run did not finish")
    assert [e["pid"] for e in sysjobs.events(r, "done")] == [b.pid]
    assert sysjobs.runs(r) == {slow: 2}
    assert left_anywhere(r) == EMPTY
    assert r.exists(f"roadie:inflight:{a.identity}") == 0
    assert r.smembers("roadie:inflight-owners") == {b.identity.encode()}
    assert f"recovered 1 in-flight job(s) of dead process {a.identity}" in b.output()
    b.send(signal.SIGTERM)
    assert b.wait_exit(15) == 0


def test_a_job_that_kills_its_process_goes_dead_after_max_crashes(
    procs: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    # One processor each, and the crashing job pushed once the first wave has run: a
    # process killed by it had nothing else in flight, so every other job runs exactly
    # once. max_crashes is left at its default, 3.
    slots: list[Proc] = [procs.spawn("-c", "1", r=r) for _ in range(2)]
    deaths: list[Proc] = []
    first = set(sysjobs.Record.perform_bulk([[5] for _ in range(100)]))
    wait_until(lambda: left_anywhere(r) == EMPTY, 20, 0.05, "the first wave did not run")
    crash = sysjobs.Crash.perform_async()

    def supervise() -> bool:
        for i, p in enumerate(slots):
            if not p.alive:
                deaths.append(p)
                slots[i] = procs.spawn("-c", "1")
        return r.zcard("dead") == 1 and set(sysjobs.runs(r)) >= first

    wait_until(supervise, 60, 0.05, "the crashing job did not reach the dead set")
    assert [p.returncode for p in deaths] == [-signal.SIGKILL] * 3
    crashes = sysjobs.events(r, "crash")
    assert [e["crashes"] for e in crashes] == [0, 1, 2]
    assert [e["pid"] for e in crashes] == [p.pid for p in deaths]

    [raw] = r.zrange("dead", 0, -1)
    dead = orjson.loads(raw)
    assert dead["jid"] == crash
    assert dead["class"] == "sys.Crash"
    assert dead["error_class"] == "roadie.errors.JobCrashedProcess"
    assert "each of the 3 times in a row that its process died" in dead["error_message"]
    assert dead["retry_count"] == 0
    assert "roadie_crashes" not in dead
    # The janitor logs the burial just after writing it: wait for the line.
    line = "(1 to the dead set for crashing processes repeatedly)"
    wait_until(lambda: line in "\n".join(p.output() for p in procs.procs), 10, 0.05,
               "the janitor did not log the burial")
    assert "\n".join(p.output() for p in procs.procs).count(line) == 1

    # The processes keep going: a second wave of jobs runs, each once.
    second = set(sysjobs.Record.perform_bulk([[] for _ in range(100)]))
    wait_until(lambda: set(sysjobs.runs(r)) >= first | second, 20,
               message="the processes stopped running jobs after the crashes")
    assert sysjobs.runs(r) == {crash: 3, **dict.fromkeys(first | second, 1)}
    assert all(p.alive for p in slots)
    assert len(deaths) == 3
    assert left_anywhere(r) == {**EMPTY, "dead": 1}
    for p in slots:
        p.wait_registered(r)  # the last replacement may still be starting
        p.send(signal.SIGTERM)
    for p in slots:
        assert p.wait_exit(15) == 0


def test_jobs_fetched_with_a_poison_job_are_neither_buried_nor_marked(
    procs: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    # A deep queue, so that each process fetches batches of 10: the poison job (it
    # os._exit(1)s) is fetched with innocent jobs, which are in flight, not started,
    # each time it kills its process. max_crashes is left at 3.
    before = sysjobs.Innocent.perform_bulk([[] for _ in range(3)])
    poison = sysjobs.Exit.perform_async()
    after = sysjobs.Innocent.perform_bulk([[] for _ in range(60)])
    innocents = set(before) | set(after)
    slots = [procs.spawn("-c", "1")]
    deaths: list[Proc] = []

    def supervise() -> bool:
        if not slots[0].alive:
            deaths.append(slots[0])
            slots[0] = procs.spawn("-c", "1")
        return r.zcard("dead") >= 1 and set(sysjobs.runs(r)) >= innocents | {poison}

    wait_until(supervise, 90, 0.05, "the poison job did not reach the dead set")
    assert [p.returncode for p in deaths] == [1, 1, 1]
    assert [e["crashes"] for e in sysjobs.events(r, "exit")] == [0, 1, 2]
    [raw] = r.zrange("dead", 0, -1)
    dead = orjson.loads(raw)
    assert dead["jid"] == poison
    assert dead["error_class"] == "roadie.errors.JobCrashedProcess"
    # Every innocent job ran (some twice: done, not yet acknowledged at a death), and
    # none was ever marked as having crashed a process.
    ran = sysjobs.events(r, "ran")
    assert {e["jid"] for e in ran} == innocents
    assert [e for e in ran if e["crashes"]] == []
    wait_until(lambda: left_anywhere(r) == {**EMPTY, "dead": 1}, 20, 0.05,
               f"jobs left behind: {left_anywhere(r)}")
    slots[0].wait_registered(r)
    slots[0].send(signal.SIGTERM)
    assert slots[0].wait_exit(15) == 0


def _slow_with_batch_mates(procs: Harness, r: redis.Redis) -> tuple[Proc, str, set[str]]:
    """A process running a Slow job, with 5 jobs fetched in its batch, not started."""
    slow = sysjobs.Slow.perform_async(300)
    mates = set(sysjobs.Innocent.perform_bulk([[] for _ in range(5)]))
    a = procs.spawn("-c", "1", r=r)
    wait_until(lambda: sysjobs.events(r, "start"), 10, message="the slow job did not start")
    assert r.llen(f"roadie:inflight:{a.identity}") == 6
    return a, slow, mates


@pytest.mark.speedup("batch")
def test_kill_9_counts_a_crash_for_the_running_job_only(
    procs: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    a, slow, mates = _slow_with_batch_mates(procs, r)

    a.kill()  # the process only: its pulse sees it die and writes the death record
    record = wait_until(lambda: r.get(f"roadie:died:{a.identity}"), 10, 0.02,
                        "the pulse wrote no death record")
    assert orjson.loads(record)["running"] == [slow]
    assert r.exists(f"roadie:alive:{a.identity}") == 0  # nobody runs its jobs now
    r.set(sysjobs.RELEASE, 1)
    b = procs.spawn("-c", "1", r=r)

    wait_until(lambda: set(sysjobs.runs(r)) >= mates | {slow}
               and len(sysjobs.events(r, "done")) == 1, 20, 0.05,
               "the killed process's jobs did not run again")
    [_, again] = sysjobs.events(r, "start")
    assert (again["pid"], again["crashes"]) == (b.pid, 1)
    assert [e["crashes"] for e in sysjobs.events(r, "ran")] == [0] * 5
    wait_until(lambda: r.exists(f"roadie:died:{a.identity}") == 0, 10, 0.05,
               "the janitor did not delete the death record")
    b.send(signal.SIGTERM)
    assert b.wait_exit(15) == 0


@pytest.mark.speedup("batch")
def test_a_kill_of_the_whole_group_falls_back_to_the_last_heartbeat(
    procs: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    a, slow, mates = _slow_with_batch_mates(procs, r)
    # A beat after the start lists the running job in the work hash.
    wait_until(lambda: r.hlen(f"{a.identity}:work") == 1, 10, 0.02, "no work entry")

    os.killpg(a.pid, signal.SIGKILL)  # the pulse too: no death record
    a.wait_exit(10)
    r.set(sysjobs.RELEASE, 1)
    b = procs.spawn("-c", "1", r=r)

    wait_until(lambda: set(sysjobs.runs(r)) >= mates | {slow}
               and len(sysjobs.events(r, "done")) == 1, 30, 0.05,
               "the killed process's jobs did not run again")
    assert r.exists(f"roadie:died:{a.identity}") == 0
    [_, again] = sysjobs.events(r, "start")
    assert (again["pid"], again["crashes"]) == (b.pid, 1)
    assert [e["crashes"] for e in sysjobs.events(r, "ran")] == [0] * 5
    b.send(signal.SIGTERM)
    assert b.wait_exit(15) == 0
