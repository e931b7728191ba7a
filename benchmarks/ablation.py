#!/usr/bin/env python
"""What each speed mechanism of ``roadie.speedups`` still gains (``make ablation``).

For each mechanism, roadie runs the ``make bench`` workloads that mechanism is for,
once with every mechanism on and once with that one off (``ROADIE_SPEEDUPS_OFF``),
on one private redis-server. Runs are interleaved (run 1 of every variant, then run
2, ...), so that a slow spell of the machine falls on all variants alike; medians
are reported. The figure is the time to run the workload's jobs: ``off / on`` above
1 is what the mechanism gains, about 1 means it no longer shows.

    .venv/bin/python benchmarks/ablation.py                       # N=20,000, 3 runs
    .venv/bin/python benchmarks/ablation.py --mechanisms steal,park --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402
from core import SPEEDUPS_OFF_VAR, command_line, progress  # noqa: E402

from roadie.speedups import SPEEDUPS  # noqa: E402

#: The workloads each mechanism is for (``bench.WORKLOADS``).
TARGETS: dict[str, tuple[str, ...]] = {
    "batch": ("noop", "onecall"),
    "deferred_ack": ("noop", "onecall"),
    "steal": ("io-sync", "io-async"),
    "park": ("io-sync", "io-async"),
    "deal": ("io-sync", "io-async"),
    "start_together": ("io-sync", "io-async"),
    "loop_fetch": ("io-async",),
    "refill": ("io-sync",),
    "loop_connection": ("io-async",),
    "short_command_path": ("noop", "onecall"),
    "gil_send": ("onecall", "onecall-own"),
    "lend_connection": ("onecall",),
}
assert set(TARGETS) == {s.name for s in SPEEDUPS}, "every mechanism needs its workloads"

#: The variant with every mechanism on.
ALL_ON = ""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mechanisms", type=bench.csv, default=list(TARGETS),
                   help="comma-separated roadie.speedups names (default all)")
    p.add_argument("--jobs", type=int, default=20_000, help="N (default 20,000)")
    p.add_argument("--runs", type=int, default=3, help="runs per variant (default 3)")
    p.add_argument("--timeout", type=float, default=900.0)
    args = p.parse_args(argv)
    unknown = set(args.mechanisms) - set(TARGETS)
    if unknown:
        p.error(f"no such mechanism: {', '.join(sorted(unknown))}; choose from "
                f"{', '.join(TARGETS)}")
    if args.jobs < 1 or args.runs < 1:
        p.error("--jobs and --runs must be >= 1")
    return args


def cases_for(workloads: Sequence[str], jobs: int,
              system: bench.System) -> list[bench.Case]:
    plan_args = argparse.Namespace(workloads=list(workloads), jobs=jobs, memory_jobs=jobs)
    return bench.plan(plan_args, {"roadie": system})


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    notes: list[str] = []
    system = bench.make_system("roadie", notes)
    if system is None:
        raise SystemExit("; ".join(notes) or "roadie cannot run here")
    needed = sorted({w for m in args.mechanisms for w in TARGETS[m]})
    variants = [ALL_ON, *args.mechanisms]
    cases = {v: cases_for(needed if v == ALL_ON else TARGETS[v], args.jobs, system)
             for v in variants}
    seconds: dict[tuple[str, bench.Case], list[float]] = {}
    with bench.redis_for(argparse.Namespace(redis_url=None)) as (url, _binary):
        r = redis.Redis.from_url(url)
        for run_no in range(1, args.runs + 1):
            for variant in variants:
                os.environ[SPEEDUPS_OFF_VAR] = variant  # "" : all on (core.child_env)
                for case in cases[variant]:
                    progress(f"run {run_no}/{args.runs}: {variant or 'all on'}: "
                             f"{case.workload} -c {case.concurrency} -P {case.processes}")
                    try:
                        result = bench.run_adapter(system, case, url, args.timeout, r)
                    except (RuntimeError, ValueError, OSError, redis.RedisError) as exc:
                        progress(f"FAILED: {exc}")  # shown as failed in the table
                        continue
                    if "seconds" in result:
                        seconds.setdefault((variant, case), []).append(float(result["seconds"]))
    print(render(args, cases, seconds))
    return 0


def render(args: argparse.Namespace, cases: dict[str, list[bench.Case]],
           seconds: dict[tuple[str, bench.Case], list[float]]) -> str:
    lines = [f"`{command_line()}`, medians of {args.runs} runs, seconds to run the "
             "workload's jobs (lower is faster); off / on above 1 is the mechanism's gain.",
             "", "| Mechanism off | Workload | All on (s) | Off (s) | Off / on |",
             "|---|---|---|---|---|"]
    for mechanism in args.mechanisms:
        for case in cases[mechanism]:
            on = seconds.get((ALL_ON, case))
            off = seconds.get((mechanism, case))
            if not on or not off:
                lines.append(f"| {mechanism} | {label(case)} | - | - | failed |")
                continue
            m_on, m_off = statistics.median(on), statistics.median(off)
            lines.append(f"| {mechanism} | {label(case)} | {m_on:.3f} | {m_off:.3f} | "
                         f"{m_off / m_on:.2f} |")
    return "\n".join(lines)


def label(case: bench.Case) -> str:
    return f"{case.workload} -c {case.concurrency} -P {case.processes}"


if __name__ == "__main__":
    sys.exit(main())
