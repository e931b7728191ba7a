"""A real ``roadie run`` process runs what the test pushes: now, later, or into retry/dead."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import redis
import sysjobs
from support.procs import Harness
from support.redis import inflight_total, left_anywhere
from support.wait import poll

import roadie
from roadie.embedded import RedisServer

pytestmark = pytest.mark.system


def test_jobs_run_exactly_once_scheduled_on_time_failures_to_retry_and_dead(
    procs: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    p = procs.spawn("-c", "5", r=r)

    singles = [sysjobs.Record.perform_async() for _ in range(10)]
    bulk = sysjobs.Record.perform_bulk([[] for _ in range(500)], batch_size=128)
    pushed = set(singles) | set(bulk)
    assert len(pushed) == 510

    due_at = time.time() + 2.0
    scheduled = sysjobs.Stamp.perform_in(2.0, "later")
    assert r.zcard("schedule") == 1
    failing = sysjobs.Fail.perform_async("boom")
    buried = sysjobs.FailNoRetry.perform_async("no retry")

    # Everything pushed for now runs exactly once.
    poll(lambda: set(sysjobs.runs(r)) >= pushed, 20, "the 510 jobs did not all run")
    runs = sysjobs.runs(r)
    assert {jid: runs[jid] for jid in pushed} == dict.fromkeys(pushed, 1)

    # The scheduled job runs after its time, once.
    poll(lambda: sysjobs.events(r, "stamp"), 15, "the scheduled job did not run")
    [stamp] = sysjobs.events(r, "stamp")
    assert stamp["jid"] == scheduled
    assert stamp["label"] == "later"
    assert stamp["t"] >= due_at - 0.01, f"ran {due_at - stamp['t']:.3f}s early"
    assert r.zcard("schedule") == 0

    # A failing job waits in `retry` with Sidekiq's fields.
    poll(lambda: r.zcard("retry") == 1 and r.zcard("dead") == 1, 10,
         "the failing jobs did not reach retry and dead")
    [(raw, score)] = r.zrange("retry", 0, -1, withscores=True)
    entry = orjson.loads(raw)
    assert entry["jid"] == failing
    assert entry["class"] == "sys.Fail"
    assert entry["args"] == ["boom"]
    assert entry["queue"] == "default"
    assert entry["retry"] is True
    assert entry["retry_count"] == 0
    assert entry["error_class"] == "ValueError"
    assert entry["error_message"] == "boom"
    assert isinstance(entry["failed_at"], float)
    assert "retried_at" not in entry
    # Sidekiq's first backoff: 0**4 + 15 s plus a jitter below 10 s.
    assert 15.0 <= score - entry["failed_at"] < 25.0

    # retry=0: straight to the dead set, not to retry.
    [(dead_raw, dead_score)] = r.zrange("dead", 0, -1, withscores=True)
    dead = orjson.loads(dead_raw)
    assert dead["jid"] == buried
    assert dead["class"] == "sys.FailNoRetry"
    assert dead["retry"] == 0
    assert dead["retry_count"] == 0
    assert dead["error_class"] == "ValueError"
    assert dead["error_message"] == "no retry"
    assert abs(dead_score - dead["failed_at"]) < 5.0

    runs = sysjobs.runs(r)
    assert runs[failing] == 1
    assert runs[buried] == 1
    assert runs[scheduled] == 1
    assert len(runs) == 513

    # A clean stop flushes the counters and leaves nothing behind.
    p.send(signal.SIGTERM)
    assert p.wait_exit(15) == 0
    assert int(r.get("stat:processed") or 0) == 513
    assert int(r.get("stat:failed") or 0) == 2
    assert left_anywhere(r) == {"queues": 0, "inflight": 0, "schedule": 0, "retry": 1,
                                "dead": 1}
    assert inflight_total(r) == 0
    assert r.smembers("processes") == set()
    # As Sidekiq, the process hash is left to expire (60 s) rather than deleted.
    assert 0 < r.ttl(p.identity) <= 60
    assert "bye" in p.output()


# --- issue 17, item 7: settings that would silently disable a guarantee -----------------
@pytest.mark.parametrize(("env", "message"), [
    # Started 197 pulse processes in 10 s.
    ({"ROADIE_HEARTBEAT_INTERVAL_S": "-5"},
     "roadie: heartbeat_interval_s must be a number of seconds from 0.05 to 30 (the process "
     "hash it refreshes expires after 60 s), got -5 (from environment variable "
     "ROADIE_HEARTBEAT_INTERVAL_S)"),
    # 5,000 commands a second from an idle process.
    ({"ROADIE_JANITOR_INTERVAL_S": "0"},
     "roadie: janitor_interval_s must be a number of seconds from 0.05 to 3600, got 0 "
     "(from environment variable ROADIE_JANITOR_INTERVAL_S)"),
    # Every idle fetch counted as an outage; a killed process's jobs were never recovered.
    ({"ROADIE_SOCKET_TIMEOUT_S": "2"},
     "roadie: socket_timeout_s must be at least 3 for roadie run, got 2 (from environment "
     "variable ROADIE_SOCKET_TIMEOUT_S): an idle processor waits 2 s for a job"),
])
def test_settings_that_disable_a_guarantee_stop_roadie_run_at_once(
    procs: Harness, r: redis.Redis, env: dict[str, str], message: str
) -> None:
    proc = procs.spawn(env=env)
    assert proc.wait_exit(20) == 1, proc.output()
    output = proc.output()
    assert "Traceback" not in output
    assert [line for line in output.splitlines() if line.strip()] == [
        line for line in output.splitlines() if line.startswith(message)], output
    assert r.smembers("processes") == set()


@pytest.mark.parametrize(("args", "message"), [
    (["-c", "40"], "roadie: roadie run with -c/--concurrency 40 needs 47 Redis connections "
     "(40 for the processors + 7 shared), more than Redis at {where} accepts (maxclients 30): "
     "lower the concurrency, or raise maxclients in redis.conf (and the open files limit of "
     "redis-server, ulimit -n)"),
    (["-c", "10", "-P", "2"], "roadie: roadie run with -c/--concurrency 10 needs 34 Redis "
     "connections (2 processes x (10 for the processors + 7 shared)), more than Redis at "
     "{where} accepts (maxclients 30)"),
])
def test_concurrency_past_maxclients_is_one_clear_line(
    make_harness: Callable[..., Harness], tmp_path: Path, args: list[str], message: str
) -> None:
    with RedisServer(directory=tmp_path / "redis", appendonly=False,
                     extra_args=["--maxclients", "30"]) as server:
        proc = make_harness(server.url).spawn(*args)
        assert proc.wait_exit(30) == 1, proc.output()
        output = proc.output()
        where = f"redis://127.0.0.1:{server.port}/0"
        assert "Traceback" not in output, output
        assert [line for line in output.splitlines() if line.startswith("roadie: ")] == [
            line for line in output.splitlines() if line.startswith(message.format(where=where))
        ] != [], output
        assert redis.Redis.from_url(server.url).smembers("processes") == set()
