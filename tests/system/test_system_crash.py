"""kill -9: a surviving process's janitor recovers the dead one's jobs; a job that
keeps killing its process ends in the dead set."""

from __future__ import annotations

import signal
import time

import orjson
import pytest
import redis
import sysjobs
from helpers import wait_until
from procs import DEFAULT_ENV, Harness, Proc, left_anywhere

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
    # One processor each: a process killed by the crashing job had nothing else in flight,
    # so every other job runs exactly once. max_crashes is left at its default, 3.
    slots: list[Proc] = [procs.spawn("-c", "1", r=r) for _ in range(2)]
    deaths: list[Proc] = []
    crash = sysjobs.Crash.perform_async()
    first = set(sysjobs.Record.perform_bulk([[5] for _ in range(100)]))

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
        p.send(signal.SIGTERM)
    for p in slots:
        assert p.wait_exit(15) == 0
