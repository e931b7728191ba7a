"""TERM, TSTP and the dashboard's signals list, on real ``roadie run`` processes."""

from __future__ import annotations

import signal
import time

import orjson
import pytest
import redis
import sysjobs
from support.procs import Harness, Proc
from support.redis import inflight_keys, inflight_total, left_anywhere
from support.wait import wait_until

import roadie
from roadie.server.pulse.lite import KILL_GRACE_S, SECOND_STOP_AFTER_S

pytestmark = pytest.mark.system


def started(r: redis.Redis, jid: str | None) -> list[dict[str, object]]:
    return [e for e in sysjobs.events(r, "start") if e["jid"] == jid]


def running_slow(procs: Harness, r: redis.Redis, seconds: float, *args: str) -> tuple[Proc, str]:
    """A ``roadie run *args`` process running a ``Slow`` job of ``seconds``; its jid."""
    p = procs.spawn(*args, r=r)
    slow = sysjobs.Slow.perform_async(seconds)
    wait_until(lambda: started(r, slow), 10, message="the slow job did not start")
    return p, slow


def test_term_mid_job_pushes_it_back_to_the_front_byte_identical(
    procs: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    p, slow = running_slow(procs, r, 60, "-c", "1", "-t", "1")
    [slow_raw] = r.lrange(f"roadie:inflight:{p.identity}", 0, -1)
    # A second job waits behind it: the only processor is busy.
    queued = sysjobs.Record.perform_async()
    [queued_raw] = r.lrange("queue:default", 0, -1)

    t0 = time.monotonic()
    p.send(signal.SIGTERM)
    assert p.wait_exit(10) == 0
    took = time.monotonic() - t0
    print(f"TERM with -t 1 and a job running: exited 0 after {took:.2f}s")
    assert took < 5.0

    # Back at the front (the right end, taken next), byte for byte; behind it the other.
    assert r.lrange("queue:default", 0, -1) == [queued_raw, slow_raw]
    assert inflight_total(r) == 0
    assert inflight_keys(r) == []
    assert r.sismember("processes", p.identity) == 0
    assert r.smembers("processes") == set()
    assert sysjobs.events(r, "done") == []
    assert "pushed back to the front" in p.output()

    # A second process runs it again (released, so it finishes at once), then the other.
    r.set(sysjobs.RELEASE, 1)
    q = procs.spawn("-c", "1", r=r)
    wait_until(lambda: sysjobs.runs(r).get(queued) == 1, 10,
               message="the second process did not run the requeued jobs")
    starts = started(r, slow)
    assert [e["pid"] for e in starts] == [p.pid, q.pid]
    assert [e["jid"] for e in sysjobs.events(r, "done")] == [slow]
    assert sysjobs.runs(r) == {slow: 2, queued: 1}
    q.send(signal.SIGTERM)
    assert q.wait_exit(10) == 0
    assert left_anywhere(r) == {"queues": 0, "inflight": 0, "schedule": 0, "retry": 0,
                                "dead": 0}


def test_term_lets_a_job_that_finishes_within_the_timeout_complete(
    procs: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    p, slow = running_slow(procs, r, 1.5, "-c", "2", "-t", "10")

    t0 = time.monotonic()
    p.send(signal.SIGTERM)
    assert p.wait_exit(15) == 0
    took = time.monotonic() - t0
    print(f"TERM with a 1.5 s job running and -t 10: exited 0 after {took:.2f}s")
    assert took < 10.0

    assert [e["jid"] for e in sysjobs.events(r, "done")] == [slow]
    assert sysjobs.runs(r) == {slow: 1}
    assert left_anywhere(r) == {"queues": 0, "inflight": 0, "schedule": 0, "retry": 0,
                                "dead": 0}
    assert r.smembers("processes") == set()
    assert int(r.get("stat:processed") or 0) == 1
    assert "pushed back" not in p.output()


def test_tstp_quiets_and_the_signals_list_stops_the_process(
    procs: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    p = procs.spawn("-c", "3", r=r)
    assert p.info(r)["quiet"] == "false"
    p.send(signal.SIGTSTP)
    wait_until(lambda: p.info(r)["quiet"] == "true", 10,
               message="the process hash did not turn quiet")

    # Quiet: nothing more is fetched, even by processors that were waiting on a
    # queue when the signal came (they wait up to 2 s at a time).
    # (Such a processor may take the job for an instant: it pushes it straight back.)
    jid = sysjobs.Record.perform_async()
    p.wait_beats(r, 6)  # 6 heartbeats of 0.5 s: longer than a blocking fetch lasts
    assert sysjobs.runs(r) == {}
    [raw] = r.lrange("queue:default", 0, -1)
    assert orjson.loads(raw)["jid"] == jid
    assert inflight_total(r) == 0
    assert p.info(r)["busy"] == "0"
    assert p.alive

    # A dashboard's Stop: TERM through Redis.
    r.lpush(f"{p.identity}-signals", "TERM")
    assert p.wait_exit(10) == 0
    assert r.llen(f"{p.identity}-signals") == 0
    assert r.smembers("processes") == set()
    assert r.lrange("queue:default", 0, -1) == [raw]
    assert sysjobs.runs(r) == {}
    assert "received TERM from Redis" in p.output()

    # The job is still there for the next process.
    q = procs.spawn(r=r)
    wait_until(lambda: sysjobs.runs(r) == {jid: 1}, 10, message="the job did not run")
    q.send(signal.SIGTERM)
    assert q.wait_exit(10) == 0


def test_the_signals_list_quiets_a_process_within_a_few_heartbeats(
    procs: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    p = procs.spawn("-c", "2", r=r)
    other = procs.spawn("-c", "2", r=r)
    r.lpush(f"{p.identity}-signals", "TSTP")
    t0 = time.monotonic()
    # One beat pops the signal; the next one (or the one after) writes quiet=true.
    wait_until(lambda: p.info(r)["quiet"] == "true", 5,
               message="TSTP from the signals list was not obeyed")
    print(f"TSTP through Redis obeyed after {time.monotonic() - t0:.2f}s (beats of 0.5 s)")
    assert r.llen(f"{p.identity}-signals") == 0
    assert other.info(r)["quiet"] == "false"

    # The quiet process takes nothing; the other one runs all of it.
    jids = set(sysjobs.Record.perform_bulk([[] for _ in range(50)]))
    wait_until(lambda: set(sysjobs.runs(r)) == jids, 10, message="the jobs did not run")
    assert sysjobs.runs(r) == dict.fromkeys(jids, 1)
    assert int(r.hget(p.identity, "quiet") == b"true")
    for proc in (p, other):
        proc.send(signal.SIGTERM)
    assert p.wait_exit(10) == 0
    assert other.wait_exit(10) == 0
    assert "received TSTP from Redis" in p.output()
    assert "start" not in {line.rsplit(" ", 1)[-1] for line in p.output().splitlines()}


def test_a_second_term_stops_at_once_pushing_the_running_job_back(
    procs: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    p, slow = running_slow(procs, r, 120, "-c", "2", "-t", "60")
    [slow_raw] = r.lrange(f"roadie:inflight:{p.identity}", 0, -1)

    first_at = time.monotonic()
    p.send(signal.SIGTERM)
    # The stop says what it waits for.
    wait_until(lambda: f"for 1 running job(s): sys.Slow {slow}" in p.output(), 10, 0.05,
               "the stop did not log the job it waits for")
    # Sooner, a TERM would be the first one delivered twice (terminal, systemd).
    wait_until(lambda: time.monotonic() - first_at > SECOND_STOP_AFTER_S + 0.1, 5, 0.05)
    t0 = time.monotonic()
    p.send(signal.SIGTERM)
    assert p.wait_exit(10) == 0
    took = time.monotonic() - t0
    print(f"second TERM with -t 60 and a job running: exited 0 after {took:.2f}s")
    assert took < 3.0
    assert "second stop signal: not waiting for the running jobs" in p.output()
    assert r.lrange("queue:default", 0, -1) == [slow_raw]
    assert inflight_total(r) == 0
    assert r.smembers("processes") == set()


def test_a_job_holding_the_gil_cannot_hold_a_stop_past_its_timeout(
    procs: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    p = procs.spawn("-c", "2", "-t", "2", r=r)
    held = sysjobs.HoldGIL.perform_async(60)
    wait_until(lambda: sysjobs.events(r, "gil-start"), 10, message="the job did not start")

    t0 = time.monotonic()
    p.send(signal.SIGTERM)
    # No thread of the process runs while the job holds the GIL, signal handlers
    # included: its pulse kills it once -t and the grace have passed.
    code = p.wait_exit(2 + KILL_GRACE_S + 5)
    took = time.monotonic() - t0
    print(f"TERM with -t 2 and a job holding the GIL: gone after {took:.2f}s")
    assert code == -signal.SIGKILL
    assert 2.0 <= took < 2 + KILL_GRACE_S + 2
    record = orjson.loads(r.get(f"roadie:died:{p.identity}") or b"{}")
    assert record["running"] == [held]
    assert "its pulse killed it" in record["reason"]

    # Its job is recovered as after a kill (one crash counted: that run returns at once).
    q = procs.spawn("-c", "1", r=r)
    wait_until(lambda: sysjobs.events(r, "gil-done"), 15, 0.05, "the job was not recovered")
    assert [(e["pid"], e["crashes"]) for e in sysjobs.events(r, "gil-start")] == [
        (p.pid, 0), (q.pid, 1)]
    q.send(signal.SIGTERM)
    assert q.wait_exit(10) == 0
    assert left_anywhere(r) == {"queues": 0, "inflight": 0, "schedule": 0, "retry": 0,
                                "dead": 0}
