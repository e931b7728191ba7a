"""The fault suite's shared account: what was pushed, what ran, what is left, what is lost.

Every scenario ends with ``account(...)``: it reads the jobs' counters (``faultjobs``)
and every place roadie keeps a job, prints one line, appends it as JSON to the file
named by ``ROADIE_FAULTS_RESULTS`` (``make soak`` prints those as a table), and the
scenario asserts on it.

``ROADIE_SOAK=1`` makes the scenarios longer: ``scale(n)`` multiplies job counts and
``soak(short, long)`` picks durations.

``python tests/faults/fault_support.py table <results.jsonl>`` prints the table.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

SOAK = os.environ.get("ROADIE_SOAK", "") not in ("", "0")
SOAK_FACTOR = 10


def scale(n: int) -> int:
    return n * SOAK_FACTOR if SOAK else n


def soak(short: float, long: float) -> float:
    return long if SOAK else short


#: Added to support.procs.FAST_ENV: random kills must never bury a job as a crash-looper.
FAULT_ENV = {"ROADIE_MAX_CRASHES": "1000000"}


def finished_count(r: redis.Redis) -> int:
    """Jobs with at least one finished run."""
    return int(r.hlen("faults:runs"))


def wait_drained(r: redis.Redis, jids: Iterable[str], timeout: float,
                 what: str = "jobs") -> None:
    """Wait until every job has finished and nothing is left anywhere."""
    want = set(jids)
    deadline = time.monotonic() + timeout
    while True:
        done = finished_count(r) >= len(want)
        if done and sum(len(v) for v in jobs_left(r).values()) == 0:
            return
        if time.monotonic() >= deadline:
            left = {k: len(v) for k, v in jobs_left(r).items()}
            raise AssertionError(f"{what} not drained after {timeout:g}s: "
                                 f"{finished_count(r)}/{len(want)} finished, left {left}")
        time.sleep(0.1)


def _hash(r: redis.Redis, key: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in r.hgetall(key).items()}


def _jids_in(raws: Iterable[bytes]) -> set[str]:
    out = set()
    for raw in raws:
        try:
            out.add(str(json.loads(raw)["jid"]))
        except (ValueError, KeyError, TypeError):
            out.add(f"<malformed {raw[:40]!r}>")
    return out


def jobs_left(r: redis.Redis) -> dict[str, set[str]]:
    """jid sets of every place roadie keeps a job: queues, in-flight lists, sets."""
    places: dict[str, set[str]] = {"queues": set(), "inflight": set()}
    for key in r.scan_iter(match="queue:*", count=1000):
        places["queues"] |= _jids_in(r.lrange(key, 0, -1))
    for key in r.scan_iter(match="roadie:inflight:*", count=1000):
        places["inflight"] |= _jids_in(r.lrange(key, 0, -1))
    for name in ("schedule", "retry", "dead"):
        places[name] = _jids_in(r.zrange(name, 0, -1))
    return places


@dataclass
class Account:
    scenario: str
    pushed: int
    runs: int  # runs that reached the end of the job's body
    distinct: int  # distinct jobs with at least one finished run
    duplicates: int  # finished runs beyond the first, all jobs together
    interrupted: int  # runs begun and never finished (killed, cut off by a stop)
    left: dict[str, int]
    lost: int  # pushed, never finished, and nowhere in Redis
    seconds: float
    soak: bool = SOAK
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def left_total(self) -> int:
        return sum(self.left.values())

    def line(self) -> str:
        left = "/".join(str(self.left[k]) for k in ("queues", "inflight", "schedule",
                                                    "retry", "dead"))
        extra = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return (f"[{self.scenario}] pushed={self.pushed} runs={self.runs} "
                f"distinct={self.distinct} duplicates={self.duplicates} "
                f"interrupted={self.interrupted} left(q/inflight/sched/retry/dead)={left} "
                f"lost={self.lost} {self.seconds:.1f}s {extra}").rstrip()

    def check(self, *, max_duplicates: int | None = None) -> None:
        """The promise: nothing lost, nothing left once drained, every job ran."""
        assert self.lost == 0, self.line()
        assert self.left_total == 0, self.line()
        assert self.distinct == self.pushed, self.line()
        if max_duplicates is not None:
            assert self.duplicates <= max_duplicates, self.line()


def account(r: redis.Redis, scenario: str, pushed: Iterable[str], started: float,
            **extra: Any) -> Account:
    """Draw, print and record the account of a scenario."""
    jids = set(pushed)
    runs = _hash(r, "faults:runs")
    starts = _hash(r, "faults:starts")
    places = jobs_left(r)
    somewhere = set().union(*places.values())
    finished = {j for j, n in runs.items() if n > 0}
    acct = Account(
        scenario=scenario,
        pushed=len(jids),
        runs=sum(runs.values()),
        distinct=len(finished & jids),
        duplicates=sum(n - 1 for n in runs.values() if n > 1),
        interrupted=sum(starts.values()) - sum(runs.values()),
        left={k: len(v) for k, v in places.items()},
        lost=len(jids - finished - somewhere),
        seconds=time.monotonic() - started,
        extra=extra,
    )
    print(acct.line())
    target = os.environ.get("ROADIE_FAULTS_RESULTS")
    if target:
        with open(target, "a") as f:
            f.write(json.dumps(asdict(acct)) + "\n")
    return acct


def table(path: Path) -> str:
    """A Markdown table of the accounts in a results file."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = ["| scenario | pushed | runs | distinct | duplicates | interrupted | left | lost "
           "| seconds | notes |", "|---|---|---|---|---|---|---|---|---|---|"]
    for a in rows:
        notes = ", ".join(f"{k} {v}" for k, v in a["extra"].items())
        out.append(f"| {a['scenario']} | {a['pushed']:,} | {a['runs']:,} | {a['distinct']:,} "
                   f"| {a['duplicates']} | {a['interrupted']} | {sum(a['left'].values())} "
                   f"| **{a['lost']}** | {a['seconds']:.1f} | {notes} |")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "table":
        sys.exit("usage: fault_support.py table <results.jsonl>")
    results = Path(sys.argv[2])
    if not results.exists():
        sys.exit(f"{results} does not exist: no scenario recorded an account")
    print(table(results))
