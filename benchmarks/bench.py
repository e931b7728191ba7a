#!/usr/bin/env python
"""roadie against Sidekiq and Python job queues, with issue 7's targets (``make bench``).

Run from the repository root::

    .venv/bin/python benchmarks/bench.py                     # N=100,000, 3 runs, print
    .venv/bin/python benchmarks/bench.py --quick             # N=5,000, 1 run
    .venv/bin/python benchmarks/bench.py --headline --write  # N=500,000, into docs/performance.md
    .venv/bin/python benchmarks/bench.py --systems roadie,sidekiq --workloads noop,onecall

One private redis-server (no persistence) is started for the whole run; before every
adapter call its database is emptied (FLUSHDB). Each system has an adapter program
(``benchmarks/roadie_adapter.py``, ``benchmarks/sidekiq/adapter.rb``,
``benchmarks/peers/<peer>_adapter.py``) run as a subprocess, which starts and kills
its own workers and prints one JSON object; this script takes the medians over the
runs and renders the tables. The adapter contract is in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from core import (  # noqa: E402
    SPEEDUPS_OFF_VAR,
    check_local,
    command_line,
    cpu_model,
    load1,
    progress,
    source_revision,
)

DEFAULT_DOC = ROOT / "docs" / "performance.md"
START_MARK = "<!-- bench.py:start -->"
END_MARK = "<!-- bench.py:end -->"
PEERS_DIR = HERE / "peers"
SIDEKIQ_ADAPTER = HERE / "sidekiq" / "adapter.rb"
ROADIE_ADAPTER = HERE / "roadie_adapter.py"
WORKLOADS = ("push-single", "push-bulk", "noop", "onecall", "onecall-own", "ceiling", "io-sync",
             "io-async", "lat1", "lat3", "memory")
#: The --best sweep of roadie's one-call throughput: (threads, processes).
BEST_SWEEP = ((5, 1), (20, 1), (40, 1), (5, 2), (20, 2))
#: Most single pushes timed (a push is one round trip: 20,000 are plenty).
PUSH_SINGLE_MAX = 20_000


class SetupError(Exception):
    """A system cannot be run here (not installed, env failed): skipped with a note."""


# --- systems ---------------------------------------------------------------------
@dataclass
class System:
    name: str
    argv: list[str]  # interpreter + adapter
    peer: bool = False

    def setting(self, executors: int, processes: int = 1) -> tuple[int, int] | None:
        """(C, P) for ``executors`` in all, or None when the system cannot do it."""
        if self.name == "rq":  # RQ runs one job at a time per worker process
            if processes != 1 or executors > 10:
                return None
            return 1, executors
        if executors % processes:
            return None
        return executors // processes, processes


def peer_names() -> list[str]:
    return sorted(p.name.removesuffix("_adapter.py") for p in PEERS_DIR.glob("*_adapter.py"))


def load_envs() -> Any:
    path = PEERS_DIR / "envs.py"
    if not path.exists():
        raise SetupError(f"{path.relative_to(ROOT)} is missing")
    spec = importlib.util.spec_from_file_location("bench_peer_envs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 (this process's and its children's) goes to stderr meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def make_system(name: str, notes: list[str]) -> System | None:
    try:
        if name == "roadie":
            return System(name, [sys.executable, str(ROADIE_ADAPTER)])
        if name == "sidekiq":
            missing = [b for b in ("ruby", "sidekiq") if shutil.which(b) is None]
            if missing:
                raise SetupError(f"{' and '.join(missing)} not on PATH "
                                 "(Debian: apt-get install ruby-sidekiq ruby-hiredis)")
            return System(name, ["ruby", str(SIDEKIQ_ADAPTER)])
        if name not in peer_names():
            raise SetupError(f"no adapter benchmarks/peers/{name}_adapter.py")
        progress(f"{name}: preparing its virtualenv (benchmarks/peers/envs.py) ...")
        with stdout_to_stderr():  # pip's chatter must not mix with the report
            python = load_envs().ensure_env(name)
        return System(name, [str(python), str(PEERS_DIR / f"{name}_adapter.py")], peer=True)
    except Exception as exc:  # any failure to set a peer up only skips that peer
        notes.append(f"{name} skipped: {type(exc).__name__}: {exc}")
        progress(f"{name} SKIPPED: {exc}")
        return None


# --- cases and runs -----------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    system: str
    workload: str
    concurrency: int
    processes: int
    jobs: int


@dataclass
class Outcome:
    runs: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None
    failures: list[str] = field(default_factory=list)

    def median(self, key: str) -> float | None:
        values = [float(r[key]) for r in self.runs
                  if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
        return statistics.median(values) if values else None


def plan(args: argparse.Namespace, systems: dict[str, System]) -> list[Case]:
    """Every (system x workload x setting) to run, each ``--runs`` times."""
    n = args.jobs
    cases: list[Case] = []

    def add(sysname: str, workload: str, executors: int, processes: int = 1,
            jobs: int = n) -> None:
        setting = systems[sysname].setting(executors, processes)
        if setting is not None:
            cases.append(Case(sysname, workload, setting[0], setting[1], jobs))

    for name, system in systems.items():
        for w in args.workloads:
            if w == "push-single":
                add(name, w, 10, jobs=min(n, PUSH_SINGLE_MAX))
            elif w in ("push-bulk", "lat1", "lat3"):
                add(name, w, 10)
            elif w == "memory":
                # The memory target is after 500,000 jobs (--memory-jobs); the
                # Python peers, not part of it and up to 30x slower, run N.
                add(name, w, 10, jobs=min(n, args.memory_jobs) if system.peer
                    else args.memory_jobs)
            elif w in ("noop", "onecall"):
                add(name, w, 10)
                if not system.peer:
                    add(name, w, 20, 2)  # P 2 with -c 10 each
            elif w == "onecall-own":
                # The peers' one-call jobs already use a client of their own (PEERS_OWN_CLIENT).
                if not system.peer:
                    add(name, w, 10)
                    add(name, w, 20, 2)
            elif w == "ceiling":
                if not system.peer:  # one ceiling per language: roadie (Python), Sidekiq (Ruby)
                    add(name, w, 1)
            elif w in ("io-sync", "io-async"):
                add(name, w, 10)
                add(name, w, 100)
                if not system.peer:
                    add(name, w, 100, 2)  # both cores: P 2 with -c 50 each
    return cases


def run_adapter(system: System, case: Case, url: str, timeout: float,
                r: redis.Redis) -> dict[str, Any]:
    r.flushdb()
    argv = [*system.argv, "--redis-url", url, "--workload", case.workload,
            "--jobs", str(case.jobs), "--concurrency", str(case.concurrency),
            "--processes", str(case.processes), "--timeout", str(timeout)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 60,
                              cwd=ROOT, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"adapter still running {timeout + 60:g} s after its start") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-4:])
        raise RuntimeError(f"exit code {done.returncode}: {tail}")
    result = json.loads(lines[-1])
    if not isinstance(result, dict):
        raise RuntimeError(f"last line of stdout is not a JSON object: {lines[-1][:200]}")
    return result


def run_all(args: argparse.Namespace, systems: dict[str, System], cases: list[Case], url: str,
            notes: list[str]) -> dict[Case, Outcome]:
    r = redis.Redis.from_url(url)
    outcomes = {case: Outcome() for case in cases}
    # Runs are interleaved (run 1 of everything, then run 2...), so that a slow spell
    # of the machine does not fall on one system only.
    for run_no in range(1, args.runs + 1):
        for case in cases:
            out = outcomes[case]
            if out.skipped:
                continue
            label = (f"run {run_no}/{args.runs}: {case.system} {case.workload} "
                     f"-c {case.concurrency} -P {case.processes} N={case.jobs:,}")
            progress(label + " ...")
            try:
                result = run_adapter(systems[case.system], case, url, args.timeout, r)
            except (RuntimeError, ValueError, OSError, redis.RedisError) as exc:
                out.failures.append(f"run {run_no}: {exc}")
                progress(f"{label} FAILED: {exc}")
                continue
            if "skipped" in result:
                out.skipped = str(result["skipped"])
                continue
            if result.get("seconds_after_ready"):
                result["jobs_per_s_after_ready"] = result["jobs"] / result["seconds_after_ready"]
            out.runs.append(result)
    for case, out in outcomes.items():
        for failure in out.failures:
            notes.append(f"{case.system} {case.workload} -c {case.concurrency} "
                         f"-P {case.processes}: FAILED {failure}")
    r.flushdb()
    return outcomes


def best_sweep(args: argparse.Namespace, system: System, url: str,
               notes: list[str]) -> tuple[float, int, int] | None:
    """roadie's one-call rate at a few (C, P), one run each: the best (rate, C, P)."""
    r = redis.Redis.from_url(url)
    best: tuple[float, int, int] | None = None
    for c, p in BEST_SWEEP:
        case = Case("roadie", "onecall", c, p, args.jobs)
        progress(f"best sweep: roadie onecall -c {c} -P {p} ...")
        try:
            rate = float(run_adapter(system, case, url, args.timeout, r)["jobs_per_s"])
        except (RuntimeError, ValueError, KeyError, OSError, redis.RedisError) as exc:
            notes.append(f"best sweep -c {c} -P {p}: FAILED {exc}")
            continue
        if best is None or rate > best[0]:
            best = (rate, c, p)
    return best


# --- the report -------------------------------------------------------------------
@dataclass(frozen=True)
class Measure:
    label: str
    workload: str
    executors: int
    processes: int
    key: str
    spec: str
    #: "roadie": other columns also get value/roadie's; "ceiling": also value/own ceiling
    #: ("ceiling-own": value/the system's ceiling of the own-client body).
    compare: str = ""


MEASURES = [
    Measure("push, one call per job, jobs/s", "push-single", 10, 1, "jobs_per_s", ",.0f",
            "roadie"),
    Measure("push, bulk API (batches of 1,000), jobs/s", "push-bulk", 10, 1, "jobs_per_s", ",.0f",
            "roadie"),
    Measure("no-op, 10 executors in 1 process, jobs/s", "noop", 10, 1, "jobs_per_s", ",.0f",
            "roadie"),
    Measure("no-op, 2 processes x 10 threads, jobs/s", "noop", 20, 2, "jobs_per_s", ",.0f",
            "roadie"),
    Measure("no-op, 10 executors, jobs/s from first heartbeat (start-up left out)", "noop", 10,
            1, "jobs_per_s_after_ready", ",.0f", "roadie"),
    Measure("one-call, 10 executors in 1 process, jobs/s", "onecall", 10, 1, "jobs_per_s",
            ",.0f", "roadie"),
    Measure("one-call, 10 executors, jobs/s from first heartbeat (start-up left out)", "onecall",
            10, 1, "jobs_per_s_after_ready", ",.0f", "ceiling"),
    Measure("one-call, 2 processes x 10 threads, jobs/s", "onecall", 20, 2, "jobs_per_s", ",.0f",
            "roadie"),
    Measure("one-call, duplicates (expect 0)", "onecall", 10, 1, "duplicates", ",.0f"),
    Measure("one-call, own client, 10 executors in 1 process, jobs/s", "onecall-own", 10, 1,
            "jobs_per_s", ",.0f", "roadie"),
    Measure("one-call, own client, 10 executors, jobs/s from first heartbeat (start-up left out)",
            "onecall-own", 10, 1, "jobs_per_s_after_ready", ",.0f", "ceiling-own"),
    Measure("one-call, own client, 2 processes x 10 threads, jobs/s", "onecall-own", 20, 2,
            "jobs_per_s", ",.0f", "roadie"),
    Measure("one-call, own client, duplicates (expect 0)", "onecall-own", 10, 1, "duplicates",
            ",.0f"),
    Measure("ceiling: one-call body in a loop, 1 thread, jobs/s", "ceiling", 1, 1, "jobs_per_s",
            ",.0f"),
    Measure("ceiling: own-client one-call body in a loop, 1 thread, jobs/s", "ceiling", 1, 1,
            "own_jobs_per_s", ",.0f"),
    Measure("I/O sync, 10 executors: first start→last end, s (ideal 2.00)", "io-sync", 10, 1,
            "seconds", ".2f"),
    Measure("I/O sync, 100 executors in 1 process, s (ideal 0.20)", "io-sync", 100, 1,
            "seconds", ".2f"),
    Measure("I/O sync, 100 executors as 2 processes x 50, s (ideal 0.20)", "io-sync", 100, 2,
            "seconds", ".2f"),
    Measure("I/O async, 10 executors, s (ideal 2.00)", "io-async", 10, 1, "seconds", ".2f"),
    Measure("I/O async, 100 executors in 1 process, s (ideal 0.20)", "io-async", 100, 1,
            "seconds", ".2f"),
    Measure("I/O async, 100 executors as 2 processes x 50, s (ideal 0.20)", "io-async", 100, 2,
            "seconds", ".2f"),
    Measure("latency, 1 queue: push→start p50, ms", "lat1", 10, 1, "p50_ms", ".2f"),
    Measure("latency, 1 queue: p99, ms", "lat1", 10, 1, "p99_ms", ".2f"),
    Measure("latency, 1 queue: max, ms", "lat1", 10, 1, "max_ms", ".2f"),
    Measure("latency, last of 3 queues: p50, ms", "lat3", 10, 1, "p50_ms", ".2f"),
    Measure("latency, last of 3 queues: p99, ms", "lat3", 10, 1, "p99_ms", ".2f"),
    Measure("latency, last of 3 queues: max, ms", "lat3", 10, 1, "max_ms", ".2f"),
    Measure("memory: worker RSS after first 10,000 jobs, MB", "memory", 10, 1, "rss_kb_first",
            ".1f"),
    Measure("memory: worker RSS after all N jobs, MB", "memory", 10, 1, "rss_kb_end", ".1f"),
]


#: Measure.compare -> the key of the ceiling workload it is divided by.
CEILING_KEYS = {"ceiling": "jobs_per_s", "ceiling-own": "own_jobs_per_s"}
#: How the Python peers' one-call jobs reach Redis: already a client of their own, so
#: bench.py runs no onecall-own for them (their one-call rows are the figures to compare).
PEERS_OWN_CLIENT = ("the Python peers' one-call jobs already call Redis through a client of "
                    "their own (rq, dramatiq, huey: a module-level redis-py client, a "
                    "connection pool; arq: ctx['redis'], the worker's asyncio client), so "
                    "they run no onecall-own: compare their one-call rows")


class Results:
    def __init__(self, systems: dict[str, System], outcomes: dict[Case, Outcome]) -> None:
        self.systems = systems
        self.outcomes = outcomes

    def outcome(self, system: str, workload: str, executors: int,
                processes: int = 1) -> Outcome | None:
        sysobj = self.systems.get(system)
        setting = sysobj.setting(executors, processes) if sysobj else None
        if setting is None:
            return None
        for case, out in self.outcomes.items():
            if (case.system, case.workload, case.concurrency, case.processes) == (
                    system, workload, *setting):
                return out
        return None

    def value(self, system: str, workload: str, executors: int, processes: int,
              key: str) -> float | None:
        out = self.outcome(system, workload, executors, processes)
        return None if out is None else out.median(key)


def fmt(value: float | None, spec: str) -> str:
    if value is None or math.isnan(value):
        return "—"
    return format(value, spec)


def cell(res: Results, system: str, m: Measure) -> str:
    out = res.outcome(system, m.workload, m.executors, m.processes)
    if out is None:
        return "—"
    if out.skipped:
        return "skipped"
    v = out.median(m.key)
    if v is None:
        return "failed" if out.failures else "—"
    if m.key.startswith("rss_kb"):
        v = v / 1024
    text = fmt(v, m.spec)
    if m.compare in CEILING_KEYS and system in ("roadie", "sidekiq"):  # each its own language
        ceiling = res.value(system, "ceiling", 1, 1, CEILING_KEYS[m.compare])
        if ceiling:
            text += f" ({v / ceiling:.2f} of ceiling)"
    if m.compare and system != "roadie":
        base = res.value("roadie", m.workload, m.executors, m.processes, m.key)
        if base:
            text += f" ({v / base:.2f}x roadie)"
    return text


@dataclass(frozen=True)
class Target:
    text: str
    measured: str
    ok: bool | None  # None: not measured


def targets(res: Results) -> list[Target]:
    def v(system: str, workload: str, ex: int, p: int, key: str) -> float | None:
        return res.value(system, workload, ex, p, key)

    out: list[Target] = []

    def ratio_target(text: str, a: float | None, b: float | None, factor: float,
                     a_name: str, b_name: str) -> None:
        if a is None or b is None:
            out.append(Target(text, "not measured", None))
            return
        out.append(Target(text, f"{a_name} {a:,.0f} vs {b_name} {b:,.0f} (x{a / b:.2f})",
                          a >= factor * b))

    rc10 = v("roadie", "onecall", 10, 1, "jobs_per_s")
    ratio_target("one-call: roadie -c 10 ≥ Sidekiq -c 10", rc10,
                 v("sidekiq", "onecall", 10, 1, "jobs_per_s"), 1.0, "roadie", "Sidekiq")
    # The ceiling loop has no start-up, so roadie's rate counts from its first heartbeat.
    ratio_target("one-call: roadie -c 10 (from first heartbeat) ≥ 0.85 x roadie's ceiling",
                 v("roadie", "onecall", 10, 1, "jobs_per_s_after_ready"),
                 v("roadie", "ceiling", 1, 1, "jobs_per_s"), 0.85, "roadie", "ceiling")
    ratio_target("one-call: roadie -P 2 -c 10 ≥ two Sidekiq processes -c 10",
                 v("roadie", "onecall", 20, 2, "jobs_per_s"),
                 v("sidekiq", "onecall", 20, 2, "jobs_per_s"), 1.0, "roadie", "Sidekiq")
    peers = [(v(name, "onecall", 10, 1, "jobs_per_s"), name)
             for name, s in res.systems.items() if s.peer]
    measured = [(rate, name) for rate, name in peers if rate is not None]
    fastest_peer = max(measured) if measured else None

    def peer_target(text: str, roadie_rate: float | None) -> None:
        if fastest_peer is None:
            out.append(Target(text, "no peer measured", None))
        else:
            ratio_target(text, roadie_rate, fastest_peer[0], 2.0, "roadie", fastest_peer[1])

    peer_target("one-call: roadie at 10 executors ≥ 2 x fastest Python peer at 10", rc10)
    # The same targets for a job that calls Redis through a client it made itself, as
    # users write jobs (no connection lent by the processor): the ratios that count.
    own10 = v("roadie", "onecall-own", 10, 1, "jobs_per_s")
    ratio_target("one-call, own client: roadie -c 10 ≥ Sidekiq -c 10 (own client)", own10,
                 v("sidekiq", "onecall-own", 10, 1, "jobs_per_s"), 1.0, "roadie", "Sidekiq")
    own_ready = v("roadie", "onecall-own", 10, 1, "jobs_per_s_after_ready")
    own_ceiling = v("roadie", "ceiling", 1, 1, "own_jobs_per_s")
    text = ("one-call, own client: roadie -c 10 (from first heartbeat) ≥ 0.85 x roadie's "
            "ceiling of that body")
    ratio_target(text, own_ready, own_ceiling, 0.85, "roadie", "own-client ceiling")
    plain_ceiling = v("roadie", "ceiling", 1, 1, "jobs_per_s")
    if own_ready is not None and own_ceiling is not None and plain_ceiling:
        last = out[-1]
        out[-1] = Target(last.text, f"{last.measured}; x{own_ready / plain_ceiling:.2f} of the "
                         f"redis_client() ceiling {plain_ceiling:,.0f}", last.ok)
    ratio_target("one-call, own client: roadie -P 2 -c 10 ≥ two Sidekiq processes -c 10 "
                 "(own client)", v("roadie", "onecall-own", 20, 2, "jobs_per_s"),
                 v("sidekiq", "onecall-own", 20, 2, "jobs_per_s"), 1.0, "roadie", "Sidekiq")
    peer_target("one-call, own client: roadie at 10 executors ≥ 2 x fastest Python peer at 10",
                own10)
    ratio_target("no-op: roadie -c 10 ≥ 1.5 x Sidekiq -c 10",
                 v("roadie", "noop", 10, 1, "jobs_per_s"),
                 v("sidekiq", "noop", 10, 1, "jobs_per_s"), 1.5, "roadie", "Sidekiq")
    for text, workload, key, limit in (
            ("idle latency, 1 queue: roadie p50 ≤ 1 ms", "lat1", "p50_ms", 1.0),
            ("idle latency, 1 queue: roadie p99 ≤ 2 ms", "lat1", "p99_ms", 2.0),
            ("idle latency, last of 3 queues: roadie p99 ≤ 5 ms", "lat3", "p99_ms", 5.0)):
        x = v("roadie", workload, 10, 1, key)
        out.append(Target(text, "not measured" if x is None else f"{x:.2f} ms",
                          None if x is None else x <= limit))
    ratio_target("push: roadie perform_bulk ≥ Sidekiq push_bulk",
                 v("roadie", "push-bulk", 10, 1, "jobs_per_s"),
                 v("sidekiq", "push-bulk", 10, 1, "jobs_per_s"), 1.0, "roadie", "Sidekiq")
    for workload in ("io-sync", "io-async"):
        for ex in (10, 100):
            # 100 executors: in one process, or over both cores (-P 2 -c 50), the better.
            tried = [(secs, procs) for procs in ((1, 2) if ex == 100 else (1,))
                     if (secs := v("roadie", workload, ex, procs, "seconds")) is not None]
            ideal = 2000 * 0.010 / ex
            text = f"I/O {workload[3:]}, {ex} executors: roadie within 10 % of ideal"
            if not tried:
                out.append(Target(text, "not measured", None))
                continue
            secs, procs = min(tried)
            where = "" if ex == 10 else (" (1 process)" if procs == 1 else " (2 x 50)")
            out.append(Target(text, f"{secs:.3f} s{where} vs ideal {ideal:.2f} s "
                                    f"(x{secs / ideal:.2f})", secs <= 1.10 * ideal))
    first = v("roadie", "memory", 10, 1, "rss_kb_first")
    end = v("roadie", "memory", 10, 1, "rss_kb_end")
    mem = res.outcome("roadie", "memory", 10, 1)
    n = int(mem.runs[0]["jobs"]) if mem and mem.runs else 0
    if first and end and n:
        out.append(Target(f"memory: roadie RSS after {n:,} jobs within 10 % of RSS after "
                          f"{min(10_000, n):,}",
                          f"{first / 1024:.1f} MB → {end / 1024:.1f} MB (x{end / first:.3f})",
                          end <= 1.10 * first))
    else:
        out.append(Target("memory: roadie RSS after N jobs within 10 % of RSS after 10,000",
                          "not measured", None))
    return out


def versions(res: Results) -> list[str]:
    seen: dict[str, str] = {}
    for case, out in res.outcomes.items():
        if out.runs and case.system not in seen:
            seen[case.system] = str(out.runs[0].get("version", "?"))
    return [f"{name} {version}" for name, version in seen.items()]


def system_notes(res: Results) -> list[str]:
    """Each system's own description of how it was run (its adapter's `notes`)."""
    lines = []
    for name in res.systems:
        for case, out in res.outcomes.items():
            if case.system == name and case.workload in ("onecall", "noop") and out.runs:
                lines.append(f"{name}: {out.runs[0].get('notes', '')}")
                break
    return lines


def render(args: argparse.Namespace, res: Results, best: tuple[float, int, int] | None,
           machine: list[tuple[str, str]], notes: list[str], command: str) -> str:
    names = list(res.systems)
    lines = [
        f"Settings: N = {args.jobs:,} jobs per throughput call (push one at a time: "
        f"{min(args.jobs, PUSH_SINGLE_MAX):,}), {args.memory_jobs:,} for memory "
        f"(Python peers: {min(args.jobs, args.memory_jobs):,}), 2,000 jobs for I/O, "
        "500 for latency; "
        f"{args.runs} run(s), each cell the **median**. \"10 executors\" = 10 threads in one "
        "process (RQ: 10 worker processes). (x) = the system's figure / roadie's.",
        "",
        "| measure | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for m in MEASURES:
        if m.workload not in args.workloads:
            continue
        label = m.label.replace("all N", f"all {args.memory_jobs:,}").replace(
            "first 10,000", f"first {min(10_000, args.memory_jobs):,}")
        lines.append(f"| {label} | " + " | ".join(cell(res, s, m) for s in names) + " |")
    if best is not None:
        lines.append(f"| one-call, roadie's best setting of the sweep, jobs/s | "
                     f"**{best[0]:,.0f}** (-c {best[1]} -P {best[2]}) |"
                     + " |" * (len(names) - 1))
    if "onecall-own" in args.workloads and any(s.peer for s in res.systems.values()):
        lines += ["", f"Own client: {PEERS_OWN_CLIENT}."]
    lines += ["", "**Targets** (issue 7):", "", "| target | measured | result |", "|---|---|---|"]
    for t in targets(res):
        verdict = "n/a" if t.ok is None else ("PASS" if t.ok else "**FAIL**")
        lines.append(f"| {t.text} | {t.measured} | {verdict} |")
    lines += ["", "Machine and versions:", "", *(f"- {k}: {v}" for k, v in machine),
              f"- systems: {', '.join(versions(res)) or 'none'}", "", "How each system ran:", "",
              *(f"- {line}" for line in system_notes(res)), "", "Command:", "", "```", command,
              "```"]
    if notes:
        lines += ["", "Notes from this run:", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def machine_info(r: redis.Redis, binary: str | None, load_start: float) -> list[tuple[str, str]]:
    info = r.info("server")
    ruby = "not installed"
    if shutil.which("ruby"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            ruby = subprocess.run(["ruby", "-v"], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
    return [
        ("date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        ("CPU model", cpu_model()),
        ("CPUs (nproc)", str(len(os.sched_getaffinity(0)))),
        ("1-min load average", f"{load_start:.2f} at start, {load1():.2f} at end"),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("Ruby", ruby),
        ("redis-server", f"{info.get('redis_version')} (private, no persistence: {binary})"),
        ("roadie source", source_revision()),
    ]


def write_doc(path: Path, block: str) -> None:
    """Replace what is between this script's markers (added at the end if absent)."""
    section = f"{START_MARK}\n{block}{END_MARK}"
    text = path.read_text() if path.exists() else "# Performance\n"
    start, end = text.find(START_MARK), text.find(END_MARK)
    if start != -1 and end > start:
        text = text[:start] + section + text[end + len(END_MARK):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


# --- main -----------------------------------------------------------------------------
def csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--systems", type=csv,
                   help="comma-separated: roadie, sidekiq and peers with an adapter in "
                        f"benchmarks/peers ({', '.join(peer_names()) or 'none yet'}); default all")
    p.add_argument("--workloads", type=csv, default=list(WORKLOADS),
                   help=f"comma-separated subset of {','.join(WORKLOADS)} (default all)")
    p.add_argument("--jobs", type=int, help="N (default 100,000)")
    p.add_argument("--runs", type=int, help="runs per case, medians reported (default 3)")
    p.add_argument("--headline", action="store_true", help="N = 500,000 (the issue's headline)")
    p.add_argument("--quick", action="store_true", help="N = 5,000 and 1 run (a smoke pass)")
    p.add_argument("--memory-jobs", type=int,
                   help="jobs of the memory workload for roadie and Sidekiq (default 500,000, "
                        "the issue's target; N with --quick); the peers run at most N")
    p.add_argument("--best", action="store_true",
                   help="also sweep roadie's one-call rate over a few -c/-P settings")
    p.add_argument("--timeout", type=float, default=900.0,
                   help="seconds one adapter call may take (default 900)")
    p.add_argument("--redis-url", help="use this local, EMPTY Redis instead of a private one "
                   "(it is flushed before every call)")
    p.add_argument("--speedups-off", metavar="NAMES",
                   help="run roadie with these speed mechanisms off (roadie.speedups names, "
                        "comma-separated, or all): to measure what each one gains")
    p.add_argument("--write", nargs="?", const=str(DEFAULT_DOC), metavar="PATH",
                   help="write the tables between the bench.py markers of PATH "
                        "(default docs/performance.md)")
    args = p.parse_args(argv)
    if args.speedups_off:
        from roadie.errors import ConfigError
        from roadie.speedups import parse_off

        try:
            parse_off(csv(args.speedups_off))
        except ConfigError as exc:  # it names the known mechanisms
            p.error(str(exc))
        os.environ[SPEEDUPS_OFF_VAR] = args.speedups_off  # read by core.child_env
    if args.quick and args.headline:
        p.error("--quick and --headline contradict each other; pick one")
    args.jobs = args.jobs or (5_000 if args.quick else 500_000 if args.headline else 100_000)
    args.runs = args.runs or (1 if args.quick else 3)
    args.memory_jobs = args.memory_jobs or (args.jobs if args.quick else 500_000)
    if args.jobs < 1 or args.runs < 1 or args.memory_jobs < 1:
        p.error("--jobs, --runs and --memory-jobs must be >= 1")
    bad = set(args.workloads) - set(WORKLOADS)
    if bad:
        p.error(f"unknown workload(s) {', '.join(sorted(bad))}; choose from {','.join(WORKLOADS)}")
    known = ["roadie", "sidekiq", *peer_names()]
    args.systems = args.systems or known
    bad = set(args.systems) - set(known)
    if bad:
        p.error(f"unknown system(s) {', '.join(sorted(bad))}; choose from {','.join(known)} "
                "(a peer needs benchmarks/peers/<peer>_adapter.py)")
    return args


@contextlib.contextmanager
def redis_for(args: argparse.Namespace) -> Iterator[tuple[str, str | None]]:
    if args.redis_url:
        check_local(args.redis_url)
        if redis.Redis.from_url(args.redis_url).dbsize():
            raise SystemExit(f"{args.redis_url} is not empty and every call flushes it; "
                             "give an empty database")
        yield args.redis_url, None
        return
    from roadie.embedded import RedisServer, find_redis_server

    with RedisServer(appendonly=False) as server:
        yield server.url, find_redis_server()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop redis-server
    notes: list[str] = []
    load_start = load1()
    systems = {s.name: s for s in (make_system(n, notes) for n in args.systems) if s}
    if "roadie" not in systems:
        notes.append("roadie not selected: ratios to roadie and targets are not computed")
    with redis_for(args) as (url, binary):
        outcomes = run_all(args, systems, plan(args, systems), url, notes)
        best = (best_sweep(args, systems["roadie"], url, notes)
                if args.best and "roadie" in systems else None)
        machine = machine_info(redis.Redis.from_url(url), binary, load_start)
    report = render(args, Results(systems, outcomes), best, machine, notes, command)
    print(report)
    if args.write:
        write_doc(Path(args.write), report)
        progress(f"wrote the tables into {args.write}")
    return 1 if any("FAILED" in note for note in notes) else 0




if __name__ == "__main__":
    sys.exit(main())
