#!/usr/bin/env python
"""roadie's adapter for ``benchmarks/bench.py`` (the contract: docs/performance.md).

    .venv/bin/python benchmarks/roadie_adapter.py --redis-url redis://127.0.0.1:PORT/0 \\
        --workload onecall --jobs 100000 --concurrency 10 --processes 1 --timeout 600

Workers are real ``python -m roadie run -r benchjobs`` processes (``-P P`` when P > 1:
one supervisor forking P workers), started in ``benchmarks/`` as core.py starts them.
Prints one JSON object as the last line of stdout, everything else on stderr; every
process started here is killed in a ``finally`` block (its whole process group).
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
sys.path.insert(0, str(HERE))

from core import (  # noqa: E402
    SPEEDUPS_OFF_VAR,
    BenchError,
    check_local,
    child_env,
    percentile,
    roadie_argv,
)

WORKLOADS = ("push-single", "push-bulk", "noop", "onecall", "onecall-own", "ceiling", "io-sync",
             "io-async", "lat1", "lat3", "memory")
IO_JOBS = 2000
LAT_JOBS = 500


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def has_processes_option() -> bool:
    """Whether this roadie has ``run -P/--processes`` (else P separate processes)."""
    out = subprocess.run([sys.executable, "-m", "roadie", "run", "--help"],
                         capture_output=True, text=True, timeout=60, check=False)
    return "--processes" in out.stdout


class Workers:
    """roadie worker processes: one ``roadie run -P P``, or P plain ones as a fallback."""

    def __init__(self, url: str, r: redis.Redis, concurrency: int, processes: int,
                 queues: Sequence[str], workdir: Path, tag: str, supervised: bool) -> None:
        self.url, self.r, self.queues = url, r, queues
        self.expected = processes
        argv = roadie_argv(url, concurrency, queues)
        if processes > 1 and supervised:
            self.argvs = [[*argv, "-P", str(processes)]]
        else:
            self.argvs = [argv] * processes
        self.logs = [workdir / f"{tag}-{i}.log" for i in range(len(self.argvs))]
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> float:
        t0 = time.monotonic()
        for argv, path in zip(self.argvs, self.logs, strict=True):
            with path.open("ab") as log:
                self.procs.append(subprocess.Popen(
                    argv, cwd=HERE, env=child_env(self.url), stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        return t0

    def tail(self, lines: int = 12) -> str:
        out = []
        for path in self.logs:
            with contextlib.suppress(OSError):
                out += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out) or "(empty logs)"

    def alive_or_raise(self, what: str) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise BenchError(f"roadie exited (code {p.returncode}) while {what}:\n"
                                 f"{self.tail()}")

    def identities(self) -> list[str]:
        return [m.decode() if isinstance(m, bytes) else str(m)
                for m in self.r.smembers("processes")]

    def wait_ready(self, deadline: float) -> float:
        """Until ``expected`` worker identities are in ``processes`` (the db was empty)."""
        while len(self.identities()) < self.expected:
            self.alive_or_raise("starting")
            if time.monotonic() > deadline:
                raise BenchError(f"roadie did not start in time:\n{self.tail()}")
            time.sleep(0.005)
        return time.monotonic()

    def worker_pids(self) -> list[int]:
        """The pids that run jobs: from the identities (host:pid:hex)."""
        return [int(ident.rsplit(":", 2)[1]) for ident in self.identities()]

    def stop(self, timeout: float = 30.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, end - time.monotonic()))
        self.kill()

    def kill(self) -> None:
        for p in self.procs:
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)  # the supervisor and its workers
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)


class Adapter:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.a = args
        self.n = args.jobs
        self.deadline = time.monotonic() + args.timeout
        self.workdir = workdir
        self.r = redis.Redis.from_url(args.redis_url)
        self.notes: list[str] = []
        self.workers: list[Workers] = []
        os.environ["BENCH_REDIS_URL"] = args.redis_url
        import roadie
        from roadie.config import Config

        roadie.configure(Config(redis_url=args.redis_url, redis_url_configured=True))
        import benchjobs

        self.jobs = benchjobs
        self.roadie = roadie
        self.supervised = args.processes <= 1 or has_processes_option()
        if not self.supervised:
            self.notes.append(f"this roadie has no run -P: {args.processes} separate processes")

    def spawn(self, queues: Sequence[str] = ("default",), processes: int | None = None) -> Workers:
        p = self.a.processes if processes is None else processes
        w = Workers(self.a.redis_url, self.r, self.a.concurrency, p, queues, self.workdir,
                    self.a.workload, self.supervised)
        self.workers.append(w)
        return w

    def check(self, what: str, w: Workers | None = None) -> None:
        if w is not None:
            w.alive_or_raise(what)
        if time.monotonic() > self.deadline:
            raise BenchError(f"timed out (--timeout {self.a.timeout:g}) while {what}")

    def wait(self, cond: Callable[[], bool], what: str, w: Workers | None,
             poll_s: float = 0.005) -> float:
        while not cond():
            self.check(what, w)
            time.sleep(poll_s)
        return time.monotonic()

    def run(self) -> dict[str, Any]:
        import redis.utils

        body = getattr(self, "w_" + self.a.workload.replace("-", "_"))()
        self.notes.insert(0, f"roadie {self.roadie.__version__}, Python "
                          f"{sys.version.split()[0]}, redis-py {redis.__version__} (hiredis: "
                          f"{'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}); job Redis calls "
                          "via roadie.redis_client() (one connection per thread), onecall-own's "
                          "via the job module's own redis.Redis.from_url(url) (a connection "
                          "pool); "
                          "--log-level WARNING"
                          + (f"; roadie run -P {self.a.processes}"
                             if self.a.processes > 1 and self.supervised else "")
                          + (f"; speed mechanisms off: {off}"
                             if (off := os.environ.get(SPEEDUPS_OFF_VAR)) else ""))
        out: dict[str, Any] = {
            "system": "roadie", "version": self.roadie.__version__,
            "workload": self.a.workload, "jobs": self.n, "concurrency": self.a.concurrency,
            "processes": self.a.processes}
        out.update(body)
        out["notes"] = "; ".join(self.notes)
        return out

    # --- workloads ---------------------------------------------------------------
    def push_bulk(self, job: Any, args: list[list[Any]]) -> None:
        job.perform_bulk(args)  # batches of 1,000, one MULTI each

    def w_push_single(self) -> dict[str, Any]:
        noop = self.jobs.Noop
        t0 = time.perf_counter()
        for i in range(self.n):
            noop.perform_async(i)
        secs = time.perf_counter() - t0
        self.check_queue()
        self.notes.append("Noop.perform_async(i), one call per job")
        return {"seconds": secs, "jobs_per_s": self.n / secs}

    def w_push_bulk(self) -> dict[str, Any]:
        args = [[i] for i in range(self.n)]
        t0 = time.perf_counter()
        self.jobs.Noop.perform_bulk(args)
        secs = time.perf_counter() - t0
        self.check_queue()
        self.notes.append("Noop.perform_bulk, batches of 1,000")
        return {"seconds": secs, "jobs_per_s": self.n / secs, "bulk": True}

    def check_queue(self) -> None:
        got = self.r.llen("queue:default")
        if got != self.n:
            raise BenchError(f"queue:default has {got} jobs, pushed {self.n}")

    def drained(self) -> bool:
        pipe = self.r.pipeline(transaction=False)
        pipe.llen("queue:default")
        for key in self.r.scan_iter("roadie:inflight:*"):
            pipe.llen(key)
        return not any(pipe.execute())

    def w_noop(self) -> dict[str, Any]:
        self.push_bulk(self.jobs.Noop, [[i] for i in range(self.n)])
        w = self.spawn()
        t0 = w.start()
        ready = w.wait_ready(self.deadline)
        done = self.wait(self.drained, "draining", w)
        w.stop()
        processed = int(self.r.get("stat:processed") or 0)
        self.notes.append("drained = queue and every roadie:inflight:* list empty")
        if processed != self.n:
            self.notes.append(f"stat:processed after stop is {processed}, expected {self.n}")
        return {"seconds": done - t0, "jobs_per_s": self.n / (done - t0),
                "seconds_after_ready": done - ready, "startup_s": ready - t0,
                "processed": processed}

    def runs_done(self, n: int) -> Callable[[], bool]:
        key = self.jobs.RUNS_KEY

        def cond() -> bool:
            return bool(self.r.hlen(key) >= n
                        and sum(int(v) for v in self.r.hvals(key)) >= n)
        return cond

    def w_onecall(self) -> dict[str, Any]:
        return self.onecall(self.jobs.OneCall)

    def w_onecall_own(self) -> dict[str, Any]:
        return self.onecall(self.jobs.OneCallOwn)

    def onecall(self, job: Any) -> dict[str, Any]:
        self.push_bulk(job, [[i] for i in range(self.n)])
        w = self.spawn()
        t0 = w.start()
        ready = w.wait_ready(self.deadline)
        done = self.wait(self.runs_done(self.n), "running one-call jobs", w)
        w.stop()
        ran = self.r.hlen(self.jobs.RUNS_KEY)
        dupes = sum(int(v) for v in self.r.hvals(self.jobs.RUNS_KEY)) - ran
        return {"seconds": done - t0, "jobs_per_s": self.n / (done - t0),
                "seconds_after_ready": done - ready, "startup_s": ready - t0,
                "ran": ran, "duplicates": dupes}

    def w_ceiling(self) -> dict[str, Any]:
        """Both one-call bodies in a loop: ``roadie.redis_client()``'s, then the own client's."""
        secs = self.loop(self.jobs.OneCall())
        own_secs = self.loop(self.jobs.OneCallOwn())
        self.notes.append("OneCall().perform(i), then OneCallOwn().perform(i) (own "
                          "redis.Redis.from_url client), in a plain loop, 1 thread, no queue")
        return {"seconds": secs, "jobs_per_s": self.n / secs, "own_seconds": own_secs,
                "own_jobs_per_s": self.n / own_secs, "concurrency": 1, "processes": 1}

    def loop(self, job: Any) -> float:
        """Seconds for ``job.perform(i)`` over N indices, the connection made beforehand."""
        job.perform(-1)  # connect outside the timed loop
        self.r.delete(self.jobs.RUNS_KEY)
        t0 = time.perf_counter()
        for i in range(self.n):
            job.perform(i)
        secs = time.perf_counter() - t0
        if self.r.hlen(self.jobs.RUNS_KEY) != self.n:
            raise BenchError(f"ceiling loop of {type(job).__name__}: wrong number of runs "
                             "recorded")
        return secs

    def io(self, job: Any) -> dict[str, Any]:
        self.push_bulk(job, [[i] for i in range(IO_JOBS)])
        w = self.spawn()
        t0 = w.start()
        key = self.jobs.IO_KEY
        done = self.wait(lambda: self.r.llen(key) >= IO_JOBS, "running sleep jobs", w)
        w.stop()
        spans = [tuple(map(float, v.split())) for v in self.r.lrange(key, 0, -1)]
        secs = max(e for _, e in spans) - min(s for s, _ in spans)
        ideal = IO_JOBS * 0.010 / (self.a.concurrency * self.a.processes)
        self.notes.append(f"{job.__name__}: 10 ms sleep, {IO_JOBS:,} jobs, start/end written "
                          "in batches (spanlog.py); ideal = 2000*0.01/(C*P)")
        return {"jobs": IO_JOBS, "seconds": secs, "jobs_per_s": IO_JOBS / secs,
                "seconds_from_spawn": done - t0, "ideal_s": ideal, "vs_ideal": secs / ideal}

    def w_io_sync(self) -> dict[str, Any]:
        return self.io(self.jobs.Sleep)

    def w_io_async(self) -> dict[str, Any]:
        return self.io(self.jobs.AsyncSleep)

    def latency(self, queues: Sequence[str], push_to: str) -> dict[str, Any]:
        w = self.spawn(queues)
        w.start()
        w.wait_ready(self.deadline)
        time.sleep(3.0)  # idle: every processor is then blocked waiting for work
        setter = self.jobs.Lat.set(queue=push_to)
        t0 = time.perf_counter()
        for i in range(LAT_JOBS):
            delay = t0 + i * 0.010 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            setter.perform_async(time.time())
        key = self.jobs.LAT_KEY
        self.wait(lambda: self.r.llen(key) >= LAT_JOBS, "running latency jobs", w, 0.01)
        w.stop()
        values = sorted(float(v) * 1000 for v in self.r.lrange(key, 0, -1))
        self.notes.append(f"{LAT_JOBS} Lat jobs pushed every 10 ms to {push_to} (worker: "
                          + " ".join(f"-q {q}" for q in queues) + ")")
        return {"jobs": LAT_JOBS, "p50_ms": percentile(values, 0.50),
                "p99_ms": percentile(values, 0.99), "max_ms": values[-1]}

    def w_lat1(self) -> dict[str, Any]:
        return self.latency(["default"], "default")

    def w_lat3(self) -> dict[str, Any]:
        return self.latency(["a", "b", "c"], "c")

    def w_memory(self) -> dict[str, Any]:
        first_at = min(10_000, self.n)
        self.push_bulk(self.jobs.OneCall, [[i] for i in range(self.n)])
        w = self.spawn(processes=1)
        t0 = w.start()
        w.wait_ready(self.deadline)
        pid = w.worker_pids()[0]
        key = self.jobs.RUNS_KEY
        first = 0
        while True:
            ran = self.r.hlen(key)
            if not first and ran >= first_at:
                first = rss_kb(pid)
            if ran >= self.n:
                break
            self.check(f"running memory jobs ({ran} of {self.n})", w)
            time.sleep(0.005)
        done = time.monotonic()
        last = rss_kb(pid)
        w.stop()
        self.notes.append(f"RSS (VmRSS) of the one roadie process after {first_at:,} jobs "
                          "and after all")
        return {"processes": 1, "seconds": done - t0, "jobs_per_s": self.n / (done - t0),
                "rss_kb_first": first, "rss_kb_end": last,
                "rss_growth": last / first if first else None}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", required=True)
    p.add_argument("--workload", required=True, choices=WORKLOADS)
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args(argv)
    if min(args.jobs, args.concurrency, args.processes) < 1:
        p.error("--jobs, --concurrency and --processes must be >= 1")
    check_local(args.redis_url)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="roadie-adapter-") as tmp:
        adapter = Adapter(args, Path(tmp))
        try:
            result = adapter.run()
        except (BenchError, redis.RedisError, OSError) as exc:
            print(f"roadie adapter, {args.workload}: {exc}", file=sys.stderr)
            return 1
        finally:
            for w in adapter.workers:
                w.kill()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
