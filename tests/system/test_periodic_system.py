"""Periodic jobs on three real ``roadie run`` processes: each tick is pushed once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import orjson
import pytest
import redis
from support.procs import Harness
from support.redis import left_anywhere
from support.wait import poll

pytestmark = pytest.mark.system

# Loaded by the processes only: importing it here would declare its schedule in this
# process too, where in-process launchers of other tests would run it.
JOBS = Path(__file__).resolve().parent / "periodic_sysjobs.py"
#: periodic_sysjobs.TICKS
TICKS = "sys:periodic:ticks"


def ran(r: redis.Redis) -> list[dict[str, object]]:
    return [orjson.loads(raw) for raw in r.lrange(TICKS, 0, -1)]


def test_three_processes_push_every_tick_exactly_once(procs: Harness, r: redis.Redis) -> None:
    ps = [procs.spawn("-r", str(JOBS), "-c", "2", "--log-level", "DEBUG", r=r)
          for _ in range(3)]
    all_up = time.time()

    def ticks_since_all_up() -> int:
        return len([t for t in ran(r) if float(t["at"]) > all_up])  # type: ignore[arg-type]

    poll(lambda: ticks_since_all_up() >= 6, 30,
         "six ticks did not run while three processes were up")
    for p in ps:
        p.send(signal.SIGTERM)
    for p in ps:
        assert p.wait_exit(30) == 0

    # What was pushed: the jobs that ran, plus any pushed as the processes stopped.
    records = ran(r)
    waiting = [orjson.loads(raw) for raw in r.lrange("queue:default", 0, -1)]
    assert {w["class"] for w in waiting} <= {"sys.PeriodicTick"}
    pushed = sorted([float(t["at"]) for t in records]  # type: ignore[arg-type]
                    + [float(w["periodic_at"]) for w in waiting])
    first = pushed[0]
    # Every second from the first tick to the last, each exactly once.
    assert pushed == [first + n for n in range(len(pushed))]
    assert len([at for at in pushed if at > all_up]) >= 6
    # Each job ran once (no duplicate jid), and the last tick is the one recorded.
    jids = [t["jid"] for t in records] + [w["jid"] for w in waiting]
    assert len(jids) == len(set(jids))
    assert r.hget("roadie:periodic:last", "every-second") == str(int(pushed[-1])).encode()
    assert left_anywhere(r) == {"queues": len(waiting), "inflight": 0, "schedule": 0,
                                "retry": 0, "dead": 0}
    # All three ran the scheduler; their logs add up to one push per tick.
    for p in ps:
        assert "periodic jobs: every-second (* * * * * *, UTC)" in p.output()
    won = [p.output().count("periodic job every-second: pushed the tick of") for p in ps]
    print(f"ticks pushed by each process: {won}")
    assert sum(won) == len(pushed)
    definition = orjson.loads(r.hget("roadie:periodic", "every-second"))
    assert (definition["cron"], definition["class"], definition["args"]) == (
        "* * * * * *", "sys.PeriodicTick", ["tick"]
    )
    assert definition["identity"] in {p.identity for p in ps}
