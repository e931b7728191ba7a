#!/usr/bin/env python
"""Load run: one million jobs through one roadie process.

Run from the repository root (``make load``)::

    .venv/bin/python benchmarks/load.py                # 1,000,000 jobs, print the table
    .venv/bin/python benchmarks/load.py --write        # ... and update docs/load.md
    .venv/bin/python benchmarks/load.py --jobs 2000    # a smoke run (tests do this)

It measures, against a private redis-server (no AOF) that it starts and removes:

1. fetch speed from a shallow queue: one ``roadie run -c 10`` process runs
   ``--fetch-jobs`` one-call jobs while a feeder keeps at most ``--shallow-depth``
   of them queued;
2. push: ``perform_bulk`` of ``--jobs`` one-call jobs, its rate, and Redis memory per
   queued job (``INFO memory`` ``used_memory`` after minus before, divided by the jobs);
3. the whole queue run by one ``roadie run -c 10`` process: its first ``--fetch-jobs``
   jobs (fetched from a queue ``--jobs`` deep, to compare with 1.), its RSS (VmRSS) at
   the first heartbeat, at half the jobs and at the end, and its throughput. Every job
   increments its own field of a hash (``HINCRBY``), so afterwards the hash must have
   exactly ``--jobs`` fields that sum to ``--jobs``: each job ran, none twice. Queues,
   in-flight lists, the retry, scheduled and dead sets must all be empty.

The whole run has one deadline (``--deadline-s``, 20 minutes by default); every
process started here is killed in a ``finally`` block, and the only traffic is to
127.0.0.1. The process helpers are benchmarks/core.py's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import redis
from core import (  # benchmarks/ is sys.path[0] when this file runs as a script
    BenchError,
    RoadieProcess,
    command_line,
    load1,
    machine_info,
    progress,
    redis_for,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DOC = ROOT / "docs" / "load.md"
START_MARK = "<!-- benchmarks/load.py:start (generated; edit the script, not this) -->"
END_MARK = "<!-- benchmarks/load.py:end -->"
QUEUE = "queue:default"
DOC_HEAD = """# Load: one million jobs

What happens to roadie with a deep queue: how fast a million jobs are pushed, what they
cost Redis in memory, whether fetching slows down when the queue is a million jobs deep
(it should not: a fetch takes from the tail of a Redis list, O(1) whatever its length),
and whether one `roadie run` process holds its memory steady over a million jobs and
runs each of them exactly once. `benchmarks/load.py` measures all of it; `make load`
runs it, `--write` puts its table below. The job is `bench.OneCall` of
`benchmarks/benchjobs.py`: one `HINCRBY` of its own index into a hash, so that the
hash proves afterwards that every job ran exactly once.

How to read it:

- *fetch* compares the first 20,000 jobs of a fresh process in two set-ups: a queue
  kept at most 1,000 deep by a feeder (the script pushes 500 more whenever it drops to
  500), and the million-job queue. The feeder costs the shallow case a little CPU on a
  2-core machine, so a ratio near 1.0 (or a little above) means depth costs nothing.
- *RSS* is `VmRSS` of the one `roadie run` process, read from `/proc` while it runs.
- *used_memory per queued job* is Redis's own count: a `bench.OneCall` payload is
  about 165 bytes of JSON, so the list itself adds only a few bytes per entry.
- The load average at the end includes the benchmark's own processes (roadie,
  redis-server, the script), not only other work on the machine.

"""


def rss_mb(pid: int) -> float | None:
    """VmRSS of a live process in MB (1 MB = 1024 kB), None once it is gone."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


class Load:
    def __init__(self, args: argparse.Namespace, url: str, workdir: Path) -> None:
        self.args = args
        self.url = url
        self.workdir = workdir
        self.r = redis.Redis.from_url(url)
        self.stop_at = time.monotonic() + float(args.deadline_s)
        self.notes: list[str] = []
        self.out: dict[str, float] = {}
        os.environ["BENCH_REDIS_URL"] = url
        import roadie
        from roadie.config import Config

        roadie.configure(Config(redis_url=url, redis_url_configured=True))
        import benchjobs

        self.job = benchjobs.OneCall
        self.runs_key = benchjobs.RUNS_KEY

    # --- helpers ------------------------------------------------------------------
    def process(self, name: str) -> RoadieProcess:
        return RoadieProcess(self.url, self.args.concurrency, ["default"],
                             self.workdir / f"{name}.log", self.r)

    def ran(self) -> int:
        return int(self.r.hlen(self.runs_key))

    def wait_ran(self, rp: RoadieProcess, count: int, what: str,
                 each: Callable[[], None] | None = None) -> float:
        """Until ``count`` distinct jobs ran; returns that time. ``each`` runs every poll."""
        while True:
            if self.ran() >= count:
                return time.monotonic()
            rp.alive_or_raise(what)
            if each is not None:
                each()
            if time.monotonic() > self.stop_at:
                raise BenchError(f"deadline passed while {what}: {self.ran():,} of "
                                 f"{count:,} jobs ran")
            time.sleep(0.005)

    def used_memory(self) -> int:
        return int(self.r.info("memory")["used_memory"])

    # --- phases --------------------------------------------------------------------
    def shallow_fetch(self) -> None:
        """``fetch_jobs`` jobs run while the queue holds at most ``shallow_depth``."""
        n, depth = self.fetch_jobs, self.args.shallow_depth
        self.r.flushdb()
        pushed = 0

        def feed() -> None:
            nonlocal pushed
            if pushed < n and self.r.llen(QUEUE) <= depth // 2:
                batch = min(depth - int(self.r.llen(QUEUE)), n - pushed)
                self.job.perform_bulk([[i] for i in range(pushed, pushed + batch)])
                pushed += batch

        with self.process("shallow") as rp:
            rp.start()
            rp.wait_ready(self.stop_at)
            t0 = time.monotonic()
            feed()
            done = self.wait_ran(rp, n, "running the shallow queue", feed)
            rp.stop()
        self.out["shallow_rate"] = n / (done - t0)
        if self.ran() != n:
            self.notes.append(f"shallow phase: {self.ran():,} distinct jobs ran, expected {n:,}")

    def push(self) -> None:
        n = self.args.jobs
        self.r.flushdb()
        mem0 = self.used_memory()
        args = [[i] for i in range(n)]
        t0 = time.perf_counter()
        self.job.perform_bulk(args)
        elapsed = time.perf_counter() - t0
        del args
        mem1 = self.used_memory()
        self.out["push_rate"] = n / elapsed
        self.out["push_s"] = elapsed
        self.out["mem_per_job"] = (mem1 - mem0) / n
        self.out["mem_total_mb"] = (mem1 - mem0) / 2**20
        if self.r.llen(QUEUE) != n:
            raise BenchError(f"perform_bulk: {self.r.llen(QUEUE):,} queued, expected {n:,}")

    def run_all(self) -> None:
        n, first = self.args.jobs, self.fetch_jobs
        peak = 0.0

        def sample() -> None:
            nonlocal peak
            peak = max(peak, rss_mb(rp.pid) or 0.0)

        with self.process("all") as rp:
            t_start = rp.start()
            ready = rp.wait_ready(self.stop_at)
            self.out["rss_start"] = rss_mb(rp.pid) or 0.0
            self.out["startup_s"] = ready - t_start
            ran0 = self.ran()
            if ran0:
                self.notes.append(f"{ran0:,} jobs had run before the first heartbeat was seen")
            t_first = self.wait_ran(rp, ran0 + first, "running the deep queue's first jobs",
                                    sample)
            self.out["deep_rate"] = first / (t_first - ready)
            self.wait_ran(rp, n // 2, "running half the jobs", sample)
            self.out["rss_mid"] = rss_mb(rp.pid) or 0.0
            done = rp.wait_drained(QUEUE, self.stop_at, poll_s=0.05)
            self.out["rss_end"] = rss_mb(rp.pid) or 0.0
            sample()
            self.out["rss_peak"] = peak
            cpu = rp.cpu_s()
            rp.stop()
        self.out["throughput"] = n / (done - ready)
        self.out["run_s"] = done - ready
        if cpu is not None:
            self.out["cpu_us"] = cpu / n * 1e6
        self.verify()

    def verify(self) -> None:
        n = self.args.jobs
        distinct = self.ran()
        total = 0
        for _, value in self.r.hscan_iter(self.runs_key, count=10_000):
            total += int(value)
        self.out["distinct"] = distinct
        self.out["dupes"] = total - distinct
        left = {
            "queues": sum(int(self.r.llen(k)) for k in self.r.scan_iter("queue:*")),
            "in-flight": sum(int(self.r.llen(k))
                             for k in self.r.scan_iter("roadie:inflight:*")),
            "retry": int(self.r.zcard("retry")),
            "schedule": int(self.r.zcard("schedule")),
            "dead": int(self.r.zcard("dead")),
        }
        self.out["left"] = sum(left.values())
        if distinct != n:
            self.notes.append(f"FAILED: {distinct:,} distinct jobs ran, expected {n:,}")
        if total != distinct:
            self.notes.append(f"FAILED: {total - distinct:,} extra runs (duplicates)")
        if self.out["left"]:
            self.notes.append(f"FAILED: jobs left behind: {left}")

    def run(self) -> dict[str, float]:
        self.fetch_jobs = min(self.args.fetch_jobs, max(1, self.args.jobs // 2))
        self.out["load_start"] = load1()
        for name, phase in (("shallow fetch", self.shallow_fetch), ("push", self.push),
                            ("run all", self.run_all)):
            progress(f"{name} ...")
            try:
                phase()
            except (BenchError, redis.RedisError) as exc:
                self.notes.append(f"{name}: FAILED: {exc}")
                progress(f"{name} FAILED: {exc}")
                break
        self.out["load_end"] = load1()
        if "shallow_rate" in self.out and "deep_rate" in self.out:
            self.out["deep_vs_shallow"] = self.out["deep_rate"] / self.out["shallow_rate"]
        self.r.flushdb()
        return self.out


# --- the report ------------------------------------------------------------------------
ROWS = [
    ("load_start", "1-min load average at start (2 cores, shared machine)", ".2f"),
    ("push_rate", "push: perform_bulk of N jobs (batches of 1,000), jobs/s", ",.0f"),
    ("push_s", "push: N jobs, s", ".1f"),
    ("mem_per_job", "Redis used_memory per queued job, bytes", ",.0f"),
    ("mem_total_mb", "Redis used_memory for the N queued jobs, MB", ",.1f"),
    ("shallow_rate", "fetch: first F jobs, queue kept <= D deep, jobs/s", ",.0f"),
    ("deep_rate", "fetch: first F jobs, queue N deep, jobs/s", ",.0f"),
    ("deep_vs_shallow", "fetch: deep / shallow (1.0 = no slowdown)", ".2f"),
    ("startup_s", "run: process start to first heartbeat, s", ".2f"),
    ("rss_start", "run: RSS at first heartbeat, MB", ".1f"),
    ("rss_mid", "run: RSS at N/2 jobs done, MB", ".1f"),
    ("rss_end", "run: RSS at all N jobs done, MB", ".1f"),
    ("rss_peak", "run: highest RSS seen while running, MB", ".1f"),
    ("run_s", "run: first heartbeat to drained, s", ",.1f"),
    ("throughput", "run: jobs/s, first heartbeat to drained", ",.0f"),
    ("cpu_us", "run: roadie process CPU per job, µs", ",.0f"),
    ("distinct", "check: distinct jobs that ran (expect N)", ",.0f"),
    ("dupes", "check: extra runs, i.e. duplicates (expect 0)", ",.0f"),
    ("left", "check: jobs left in queues, in-flight, retry, schedule, dead (expect 0)", ",.0f"),
    ("load_end", "1-min load average at end", ".2f"),
]


def render(args: argparse.Namespace, fetch_jobs: int, out: dict[str, float],
           machine: list[tuple[str, str]], notes: Sequence[str], command: str) -> str:
    def label(text: str) -> str:
        return (text.replace("N/2", f"{args.jobs // 2:,}").replace(" N", f" {args.jobs:,}")
                .replace(" F ", f" {fetch_jobs:,} ").replace(" D ", f" {args.shallow_depth:,} "))

    def cell(key: str, spec: str) -> str:
        return "—" if key not in out else format(out[key], spec)

    roadie_cmd = shlex.join(["python", "-m", "roadie", "run", "-r", "benchjobs", "-c",
                             str(args.concurrency), "--log-level", "WARNING",
                             "--redis-url", "redis://127.0.0.1:<port>/0", "-q", "default"])
    lines = [
        f"Settings: {args.jobs:,} jobs, one process `-c {args.concurrency}`, job "
        "`bench.OneCall` (one HINCRBY).",
        "",
        "| measure | value |",
        "|---|---:|",
        *(f"| {label(text)} | {cell(key, spec)} |" for key, text, spec in ROWS),
        "",
        "Machine:",
        "",
        *(f"- {k}: {v}" for k, v in machine),
        "",
        "Command:",
        "",
        "```",
        command,
        "```",
        "",
        "The roadie process is started (in `benchmarks/`) as:",
        "",
        "```",
        roadie_cmd,
        "```",
    ]
    if notes:
        lines += ["", "Notes from this run:", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def write_doc(path: Path, block: str) -> None:
    section = f"{START_MARK}\n{block}{END_MARK}\n"
    text = path.read_text() if path.exists() else DOC_HEAD
    start, end = text.find(START_MARK), text.find(END_MARK)
    if start != -1 and end > start:
        text = text[:start] + section + text[end + len(END_MARK):].removeprefix("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=1_000_000, help="jobs pushed and run")
    p.add_argument("--fetch-jobs", type=int, default=20_000,
                   help="jobs timed for the shallow vs deep fetch comparison "
                        "(at most half of --jobs)")
    p.add_argument("--shallow-depth", type=int, default=1_000,
                   help="most jobs queued in the shallow fetch phase")
    p.add_argument("--concurrency", "-c", type=int, default=10)
    p.add_argument("--deadline-s", type=float, default=1200.0,
                   help="seconds the whole run may take (default 20 minutes)")
    p.add_argument("--redis-url", help="a local, empty Redis (127.0.0.1 or unix socket); "
                   "default: start a private redis-server")
    p.add_argument("--flush", action="store_true",
                   help="with --redis-url: allow FLUSHDB of a database that is not empty")
    p.add_argument("--write", nargs="?", const=str(DEFAULT_DOC), metavar="PATH",
                   help=f"update the table in PATH (default {DEFAULT_DOC.relative_to(ROOT)})")
    args = p.parse_args(argv)
    if args.jobs < 2 or args.fetch_jobs < 1 or args.shallow_depth < 2 or args.concurrency < 1:
        p.error("--jobs and --shallow-depth must be >= 2, --fetch-jobs and -c >= 1")
    if args.deadline_s <= 0:
        p.error("--deadline-s must be > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line()
    # TERM must unwind through the finally blocks that kill roadie and redis-server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with redis_for(args) as (url, binary), tempfile.TemporaryDirectory(
        prefix="roadie-load-"
    ) as tmp:
        load = Load(args, url, Path(tmp))
        out = load.run()
        machine = machine_info(load.r, binary)
        report = render(args, load.fetch_jobs, out, machine, load.notes, command)
    print(report)
    if args.write:
        write_doc(Path(args.write), report)
        progress(f"wrote the table into {args.write}")
    return 1 if any("FAILED" in note or "expected" in note for note in load.notes) else 0


if __name__ == "__main__":
    sys.exit(main())
