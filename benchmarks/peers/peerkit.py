"""The measuring half shared by the Python peers' adapters (benchmarks/peers/*_adapter.py).

Runs inside a peer's own virtualenv (standard library + redis-py only). An adapter
supplies a ``Peer`` (how to push a job, how to start its workers, how the framework
itself tells that jobs are done); ``main(peer)`` implements the workloads of the
benchmark contract (docs/performance.md), prints one JSON object as the last line of
stdout and kills every process it started, in ``finally``.

The job bodies live in ``<peer>_jobs.py``; they all write to the same keys:
``bench:runs`` (onecall / memory: HINCRBY index 1), ``bench:io`` (io-sync / io-async:
"start end" per job, gathered in the worker and written every 20 ms by
``spanlog.SpanLog``), ``bench:lat`` (lat1 / lat3: RPUSH now - pushed_at) and
``bench:probe`` (a readiness probe pushed before the latency runs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
WORKLOADS = ("push-single", "push-bulk", "noop", "onecall", "ceiling", "io-sync", "io-async",
             "lat1", "lat3", "memory")
IO_JOBS = 2000
LAT_JOBS = 500
POLL_S = 0.005
CHUNK = 1_000  # jobs per bulk call (bench.py labels push-bulk "batches of 1,000")


class BenchError(Exception):
    """A run that cannot give a figure (workers died, timeout, wrong count)."""


class Peer:
    """What one framework provides; subclasses fill these in."""

    system = "?"
    version = "?"
    notes = ""
    #: None when the framework has a bulk enqueue API, else why push-bulk is skipped.
    bulk_skip: str | None = None
    #: workload -> reason it is skipped for this framework
    skips: dict[str, str] = {}

    def __init__(self, url: str) -> None:
        self.url = url
        self.r = redis.Redis.from_url(url)

    def check(self, concurrency: int, processes: int) -> None:
        """Raise BenchError when this (C, P) makes no sense for the framework."""

    def push(self, kind: str, args: tuple[Any, ...], queue: str = "default") -> None:
        raise NotImplementedError

    def push_many(self, kind: str, argss: Sequence[tuple[Any, ...]],
                  queue: str = "default") -> None:
        """The bulk API; the default (no bulk API) pushes one at a time."""
        for args in argss:
            self.push(kind, args, queue)

    def worker_argvs(self, concurrency: int, processes: int,
                     queues: Sequence[str]) -> list[list[str]]:
        raise NotImplementedError

    def done(self) -> int:
        """How many noop jobs the framework itself counts as finished and acknowledged."""
        raise NotImplementedError

    def finished(self, n: int) -> bool:
        """Whether all ``n`` noop jobs are finished and acknowledged, by the framework's facts."""
        return self.done() >= n

    def ready(self, processes: int) -> bool:
        """Whether every worker process is up (default: the probe job is enough)."""
        return True


# --- processes ----------------------------------------------------------------------
def env_for(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["BENCH_REDIS_URL"] = url
    extra = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(HERE) + (os.pathsep + extra if extra else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid:  # field 5: pgrp
                pids.append(int(entry.name))
    return pids


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Workers:
    """The worker processes, each the leader of its own process group."""

    def __init__(self, argvs: list[list[str]], url: str, workdir: Path) -> None:
        self.argvs, self.url, self.workdir = argvs, url, workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs = [workdir / f"worker-{i}.log" for i in range(len(argvs))]

    def start(self) -> float:
        t0 = time.monotonic()
        env = env_for(self.url)
        for argv, log_path in zip(self.argvs, self.logs, strict=True):
            with log_path.open("ab") as log:
                self.procs.append(subprocess.Popen(
                    argv, cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True))
        return t0

    def check_alive(self) -> None:
        for proc, log in zip(self.procs, self.logs, strict=False):
            if proc.poll() is not None:
                raise BenchError(f"worker {' '.join(proc.args[:3])} ... exited with code "
                                 f"{proc.returncode}; log tail: {tail(log)}")

    def rss_kb(self) -> int:
        """RSS summed over every process of the workers' process groups."""
        return sum(rss_kb(pid) for proc in self.procs for pid in group_pids(proc.pid))

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs:  # the group too: forked children outlive a leader
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def tail(path: Path, lines: int = 6) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return "(no log)"


def wait_for(cond: Callable[[], bool], deadline: float, workers: Workers | None,
             what: str) -> float:
    """Poll ``cond`` every 5 ms until true; returns the monotonic time it became true."""
    n = 0
    while True:
        if cond():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        n += 1
        if workers is not None and n % 200 == 0:
            workers.check_alive()
        time.sleep(POLL_S)


def nearest_rank(sorted_values: Sequence[float], q: float) -> float:
    k = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[k - 1]


# --- workloads ------------------------------------------------------------------------
class Run:
    def __init__(self, peer: Peer, args: argparse.Namespace, workdir: Path) -> None:
        self.peer, self.args, self.workdir = peer, args, workdir
        self.r = peer.r
        self.deadline = time.monotonic() + args.timeout
        self.workers: Workers | None = None

    def spawn(self, queues: Sequence[str] = ("default",), processes: int | None = None) -> float:
        p = self.args.processes if processes is None else processes
        argvs = self.peer.worker_argvs(self.args.concurrency, p, queues)
        self.workers = Workers(argvs, self.peer.url, self.workdir)
        return self.workers.start()

    def wait(self, cond: Callable[[], bool], what: str) -> float:
        return wait_for(cond, self.deadline, self.workers, what)

    def prepush(self, kind: str, argss: list[tuple[Any, ...]],
                queue: str = "default") -> None:
        for i in range(0, len(argss), CHUNK):
            self.peer.push_many(kind, argss[i:i + CHUNK], queue)

    def push_single(self, n: int) -> dict[str, Any]:
        t0 = time.monotonic()
        for _ in range(n):
            self.peer.push("noop", ())
        dt = time.monotonic() - t0
        return {"seconds": dt, "jobs_per_s": n / dt}

    def push_bulk(self, n: int) -> dict[str, Any]:
        if self.peer.bulk_skip:
            return {"skipped": self.peer.bulk_skip}
        argss: list[tuple[Any, ...]] = [()] * n
        t0 = time.monotonic()
        self.prepush("noop", argss)
        dt = time.monotonic() - t0
        return {"seconds": dt, "jobs_per_s": n / dt, "bulk": True,
                "bulk_chunk": min(n, CHUNK)}

    def noop(self, n: int) -> dict[str, Any]:
        self.prepush("noop", [()] * n)
        t0 = self.spawn()
        t1 = self.wait(lambda: self.peer.finished(n), f"{n} noop jobs to finish")
        dt = t1 - t0
        return {"seconds": dt, "jobs_per_s": n / dt}

    def _runs_hlen(self) -> int:
        return int(self.r.hlen("bench:runs"))

    def _runs_sum(self) -> int:
        return sum(int(v) for v in self.r.hvals("bench:runs"))

    def onecall(self, n: int) -> dict[str, Any]:
        self.prepush("onecall", [(i,) for i in range(n)])
        t0 = self.spawn()
        t1 = self.wait(lambda: self._runs_hlen() >= n and self._runs_sum() >= n,
                       f"{n} one-call jobs to run")
        dt = t1 - t0
        assert self.workers is not None
        self.workers.stop()
        ran = self._runs_hlen()
        return {"seconds": dt, "jobs_per_s": n / dt, "ran": ran,
                "duplicates": self._runs_sum() - ran}

    def io(self, kind: str) -> dict[str, Any]:
        """io-sync (kind "io": time.sleep) or io-async (kind "aio": await asyncio.sleep)."""
        n = IO_JOBS
        self.prepush(kind, [()] * n)
        t0_wall, t0 = time.time(), self.spawn()
        t1 = self.wait(lambda: int(self.r.llen("bench:io")) >= n, f"{n} io jobs to finish")
        spans = [tuple(map(float, v.split())) for v in self.r.lrange("bench:io", 0, -1)]
        first = min(s for s, _ in spans)
        last = max(e for _, e in spans)
        c = self.args.concurrency * self.args.processes
        return {"jobs": n, "seconds": last - first, "jobs_per_s": n / (last - first),
                "seconds_from_spawn": t1 - t0, "ideal_s": n * 0.010 / c,
                "first_start_after_spawn_s": first - t0_wall}

    def latency(self, queues: Sequence[str]) -> dict[str, Any]:
        q = queues[-1]
        t0 = self.spawn(queues)
        self.peer.push("probe", (), q)
        self.wait(lambda: int(self.r.llen("bench:probe")) >= 1, "the readiness probe job")
        self.wait(lambda: self.peer.ready(self.args.processes), "every worker process to register")
        while time.monotonic() < t0 + 3:  # ~3 s after the spawn, as the contract says
            time.sleep(0.05)
        start = time.monotonic()
        for i in range(LAT_JOBS):
            delay = start + i * 0.010 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.peer.push("lat", (time.time(),), q)
        self.wait(lambda: int(self.r.llen("bench:lat")) >= LAT_JOBS, "the latency jobs")
        lat = sorted(float(v) * 1000 for v in self.r.lrange("bench:lat", 0, -1))
        return {"jobs": LAT_JOBS, "queues": list(queues), "p50_ms": nearest_rank(lat, 50),
                "p99_ms": nearest_rank(lat, 99), "max_ms": lat[-1]}

    def memory(self, n: int) -> dict[str, Any]:
        """One worker process (the contract), whatever --processes says."""
        first_at = min(10_000, n)
        self.prepush("onecall", [(i,) for i in range(n)])
        t0 = self.spawn(processes=1)
        assert self.workers is not None
        self.wait(lambda: self._runs_hlen() >= first_at, f"the first {first_at} jobs")
        first = self.workers.rss_kb()
        t1 = self.wait(lambda: self._runs_hlen() >= n, f"{n} jobs")
        end = self.workers.rss_kb()
        return {"seconds": t1 - t0, "jobs_per_s": n / (t1 - t0), "rss_kb_first": first,
                "rss_kb_end": end, "rss_after_jobs": first_at,
                "processes": 1,
                "rss_of": "sum over the worker's process group (forked children included)"}


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="benchmark adapter of a Python peer")
    p.add_argument("--redis-url", required=True)
    p.add_argument("--workload", required=True, choices=WORKLOADS)
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args(argv)
    if args.jobs < 1 or args.concurrency < 1 or args.processes < 1:
        p.error("--jobs, --concurrency and --processes must be at least 1")
    return args


def main(make_peer: Callable[[str], Peer], argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    os.environ["BENCH_REDIS_URL"] = args.redis_url  # read by the jobs modules at import
    peer = make_peer(args.redis_url)
    out: dict[str, Any] = {"system": peer.system, "version": peer.version,
                           "workload": args.workload, "jobs": args.jobs,
                           "concurrency": args.concurrency, "processes": args.processes}
    w = args.workload
    try:
        peer.check(args.concurrency, args.processes)
        with tempfile.TemporaryDirectory(prefix=f"bench-{peer.system}-") as tmp:
            run = Run(peer, args, Path(tmp))
            try:
                if w in peer.skips:
                    res: dict[str, Any] = {"skipped": peer.skips[w]}
                elif w == "ceiling":
                    res = {"skipped": "the one-process ceiling is measured for roadie and "
                                      "Sidekiq only"}
                elif w == "push-single":
                    res = run.push_single(args.jobs)
                elif w == "push-bulk":
                    res = run.push_bulk(args.jobs)
                elif w == "noop":
                    res = run.noop(args.jobs)
                elif w == "onecall":
                    res = run.onecall(args.jobs)
                elif w in ("io-sync", "io-async"):
                    res = run.io("io" if w == "io-sync" else "aio")
                elif w in ("lat1", "lat3"):
                    res = run.latency(("default",) if w == "lat1" else ("a", "b", "c"))
                elif w == "memory":
                    res = run.memory(args.jobs)
                else:
                    res = {"skipped": f"{w} is not implemented for {peer.system}"}
            except BenchError as exc:
                if run.workers is not None:
                    for log in run.workers.logs[:2]:
                        print(f"--- {log.name}: {tail(log, 20)}", file=sys.stderr)
                raise exc
            finally:
                if run.workers is not None:
                    run.workers.stop()
    except (BenchError, redis.RedisError, OSError) as exc:
        print(f"{peer.system} {w}: FAILED: {exc}", file=sys.stderr)
        return 1
    out.update(res)
    out["notes"] = peer.notes
    print(json.dumps(out))
    return 0
