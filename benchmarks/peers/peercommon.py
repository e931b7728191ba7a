"""What the peer adapters of ``benchmarks/bench.py`` share (standard library + redis-py).

Each ``<peer>_adapter.py`` defines a :class:`Peer` subclass (how to push jobs, the worker
command line, when a no-op run is finished) and calls :func:`main`. The workloads
themselves (timing, polling, latency, memory) are implemented once here, the same for every
peer, after the contract in docs/performance.md and ``benchmarks/roadie_adapter.py``.
Every worker is started with its peer's own CLI in a new session (process group) and the
whole group is killed in a ``finally`` block.
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
from urllib.parse import urlparse

import redis

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the peer's virtualenv: its CLIs live here
WORKLOADS = ("push-single", "push-bulk", "noop", "onecall", "ceiling", "io-sync", "io-async",
             "lat1", "lat3", "memory")
RUNS_KEY = "bench:runs"
IO_KEY = "bench:io"
LAT_KEY = "bench:lat"
IO_JOBS = 2000
LAT_JOBS = 500


class BenchError(Exception):
    """A workload failed (timeout, worker died, wrong count)."""


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(1, math.ceil(q * len(sorted_values))) - 1]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def session_pids(sid: int) -> list[int]:
    """Every live process of session ``sid`` (the CLI and whatever it forked)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == sid and fields[0] != "Z":  # fields[3] is the session id
                pids.append(int(d.name))
    return pids


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Workers:
    """Worker processes started from argv lists, each in its own session."""

    def __init__(self, argvs: list[list[str]], env: dict[str, str], workdir: Path,
                 tag: str) -> None:
        self.argvs, self.env = argvs, env
        self.logs = [workdir / f"{tag}-{i}.log" for i in range(len(argvs))]
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> float:
        t0 = time.monotonic()
        for argv, path in zip(self.argvs, self.logs, strict=True):
            with path.open("ab") as out:
                self.procs.append(subprocess.Popen(
                    argv, cwd=HERE, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True))
        return t0

    def tail(self, lines: int = 15) -> str:
        out: list[str] = []
        for path in self.logs:
            with contextlib.suppress(OSError):
                out += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out) or "(empty logs)"

    def alive_or_raise(self, what: str) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise BenchError(f"worker exited (code {p.returncode}) while {what}:\n"
                                 f"{self.tail()}")

    def rss_kb(self) -> int:
        """Sum of VmRSS over every process of the workers' sessions."""
        return sum(rss_kb(pid) for p in self.procs for pid in session_pids(p.pid))

    def stop(self, timeout: float = 20.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(p.pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, end - time.monotonic()))
        self.kill()

    def kill(self) -> None:
        for p in self.procs:
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)


class Peer:
    """One framework. Subclasses fill in the hooks; the workloads are in :class:`Runner`."""

    system = "?"
    version = "?"
    #: Why io-async does not apply (None: the peer implements it).
    no_async = "no async job style"
    #: Why push-bulk does not apply (None: the peer has a bulk enqueue API).
    no_bulk: str | None = None

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = args.redis_url

    # jobs are named "noop", "onecall", "sleep", "lat"
    def push(self, job: str, arg: Any, queue: str = "default") -> None:
        raise NotImplementedError

    def push_bulk(self, job: str, args: list[Any], queue: str = "default") -> None:
        """The framework's bulk API (or, for untimed set-up only, a loop of pushes)."""
        for a in args:
            self.push(job, a, queue)

    def queued(self, queue: str = "default") -> int:
        raise NotImplementedError

    def worker_argvs(self, queues: Sequence[str], concurrency: int,
                     processes: int) -> list[list[str]]:
        raise NotImplementedError

    def ready(self, r: redis.Redis, workers: int) -> bool:
        """Whether the framework says its workers are up (False: wait 3 s instead)."""
        return False

    def noop_done(self, r: redis.Redis, n: int) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        return ""


class Runner:
    def __init__(self, peer: Peer, args: argparse.Namespace, workdir: Path) -> None:
        self.p, self.a = peer, args
        self.n = args.jobs
        self.deadline = time.monotonic() + args.timeout
        self.workdir = workdir
        self.r = redis.Redis.from_url(args.redis_url)
        self.notes: list[str] = []
        self.workers: list[Workers] = []
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REDIS_URL")}
        env.update(BENCH_REDIS_URL=args.redis_url, PYTHONPATH=str(HERE),
                   PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1")
        self.env = env

    def spawn(self, queues: Sequence[str] = ("default",), processes: int | None = None) -> Workers:
        p = self.a.processes if processes is None else processes
        w = Workers(self.p.worker_argvs(queues, self.a.concurrency, p), self.env, self.workdir,
                    self.a.workload)
        self.workers.append(w)
        return w

    def check(self, what: str, w: Workers | None = None) -> None:
        if w is not None:
            w.alive_or_raise(what)
        if time.monotonic() > self.deadline:
            raise BenchError(f"timed out (--timeout {self.a.timeout:g}) while {what}"
                             + (f"\n{w.tail()}" if w else ""))

    def wait(self, cond: Callable[[], bool], what: str, w: Workers | None,
             poll_s: float = 0.005) -> float:
        while not cond():
            self.check(what, w)
            time.sleep(poll_s)
        return time.monotonic()

    def run(self) -> dict[str, Any]:
        import redis.utils

        out: dict[str, Any] = {
            "system": self.p.system, "version": self.p.version, "workload": self.a.workload,
            "jobs": self.n, "concurrency": self.a.concurrency, "processes": self.a.processes}
        body = getattr(self, "w_" + self.a.workload.replace("-", "_"))()
        out.update(body)
        head = (f"{self.p.system} {self.p.version}, Python {sys.version.split()[0]}, redis-py "
                f"{redis.__version__} (hiredis: "
                f"{'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}); {self.p.describe()}")
        out["notes"] = "; ".join([head, *self.notes])
        return out

    # --- workloads ---------------------------------------------------------------
    def check_queue(self, n: int) -> None:
        got = self.p.queued()
        if got != n:
            raise BenchError(f"the queue holds {got} jobs after pushing {n}")

    def w_push_single(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        for i in range(self.n):
            self.p.push("noop", i)
        secs = time.perf_counter() - t0
        self.check_queue(self.n)
        return {"seconds": secs, "jobs_per_s": self.n / secs}

    def w_push_bulk(self) -> dict[str, Any]:
        if self.p.no_bulk:
            return {"skipped": self.p.no_bulk}
        args = list(range(self.n))
        t0 = time.perf_counter()
        self.p.push_bulk("noop", args)
        secs = time.perf_counter() - t0
        self.check_queue(self.n)
        return {"seconds": secs, "jobs_per_s": self.n / secs, "bulk": True}

    def w_ceiling(self) -> dict[str, Any]:
        return {"skipped": "one ceiling per language: roadie's (bench.py runs it for roadie)"}

    def w_noop(self) -> dict[str, Any]:
        self.p.push_bulk("noop", list(range(self.n)))
        self.check_queue(self.n)
        w = self.spawn()
        t0 = w.start()
        done = self.wait(lambda: self.p.noop_done(self.r, self.n), "running no-op jobs", w)
        w.stop()
        return {"seconds": done - t0, "jobs_per_s": self.n / (done - t0)}

    def runs_done(self, n: int) -> Callable[[], bool]:
        def cond() -> bool:
            return bool(self.r.hlen(RUNS_KEY) >= n
                        and sum(int(v) for v in self.r.hvals(RUNS_KEY)) >= n)
        return cond

    def w_onecall(self) -> dict[str, Any]:
        self.p.push_bulk("onecall", list(range(self.n)))
        self.check_queue(self.n)
        w = self.spawn()
        t0 = w.start()
        done = self.wait(self.runs_done(self.n), "running one-call jobs", w)
        w.stop()
        ran = int(self.r.hlen(RUNS_KEY))
        dupes = sum(int(v) for v in self.r.hvals(RUNS_KEY)) - ran
        return {"seconds": done - t0, "jobs_per_s": self.n / (done - t0), "ran": ran,
                "duplicates": dupes}

    def w_io_sync(self) -> dict[str, Any]:
        self.p.push_bulk("sleep", list(range(IO_JOBS)))
        w = self.spawn()
        t0 = w.start()
        done = self.wait(lambda: self.r.llen(IO_KEY) >= IO_JOBS, "running sleep jobs", w)
        w.stop()
        spans = [tuple(map(float, v.split())) for v in self.r.lrange(IO_KEY, 0, -1)]
        secs = max(e for _, e in spans) - min(s for s, _ in spans)
        ideal = IO_JOBS * 0.010 / (self.a.concurrency * self.a.processes)
        self.notes.append(f"io-sync: {IO_JOBS:,} jobs of time.sleep(0.01), start/end "
                          "written in batches (spanlog.py); ideal = 2000*0.01/(C*P)")
        return {"jobs": IO_JOBS, "seconds": secs, "jobs_per_s": IO_JOBS / secs,
                "seconds_from_spawn": done - t0, "ideal_s": ideal, "vs_ideal": secs / ideal}

    def w_io_async(self) -> dict[str, Any]:
        return {"skipped": self.p.no_async}

    def latency(self, queues: Sequence[str], push_to: str) -> dict[str, Any]:
        w = self.spawn(queues)
        w.start()
        end = time.monotonic() + 3.0
        ready_signal = False
        while time.monotonic() < end:  # idle for 3 s, or the framework says it is ready
            self.check("starting", w)
            if self.p.ready(self.r, len(w.procs)):
                ready_signal = True
                break
            time.sleep(0.02)
        if ready_signal:
            time.sleep(1.0)  # then a second more, so that every executor is waiting
        t0 = time.perf_counter()
        for i in range(LAT_JOBS):
            delay = t0 + i * 0.010 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.p.push("lat", time.time(), push_to)
        self.wait(lambda: self.r.llen(LAT_KEY) >= LAT_JOBS, "running latency jobs", w, 0.01)
        w.stop()
        values = sorted(float(v) * 1000 for v in self.r.lrange(LAT_KEY, 0, -1))
        self.notes.append(f"{LAT_JOBS} jobs pushed every 10 ms to {push_to!r}, workers on "
                          f"{', '.join(queues)}; waited for "
                          + ("the ready signal + 1 s" if ready_signal else "3 s"))
        return {"jobs": LAT_JOBS, "p50_ms": percentile(values, 0.50),
                "p99_ms": percentile(values, 0.99), "max_ms": values[-1]}

    def w_lat1(self) -> dict[str, Any]:
        return self.latency(["default"], "default")

    def w_lat3(self) -> dict[str, Any]:
        return self.latency(["a", "b", "c"], "c")

    def w_memory(self) -> dict[str, Any]:
        first_at = min(10_000, self.n)
        self.p.push_bulk("onecall", list(range(self.n)))
        w = self.spawn(processes=1)
        t0 = w.start()
        first = 0
        while True:
            ran = int(self.r.hlen(RUNS_KEY))
            if not first and ran >= first_at:
                first = w.rss_kb()
            if ran >= self.n:
                break
            self.check(f"running memory jobs ({ran} of {self.n})", w)
            time.sleep(0.005)
        done = time.monotonic()
        last = w.rss_kb()
        w.stop()
        self.notes.append(f"memory: one worker command (-P 1); RSS = sum of VmRSS over all its "
                          f"processes, after {first_at:,} jobs and after all")
        return {"processes": 1, "seconds": done - t0, "jobs_per_s": self.n / (done - t0),
                "rss_kb_first": first, "rss_kb_end": last,
                "rss_growth": last / first if first else None}


def parse_args(argv: Sequence[str] | None, doc: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--redis-url", required=True)
    p.add_argument("--workload", required=True, choices=WORKLOADS)
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args(argv)
    if min(args.jobs, args.concurrency, args.processes) < 1:
        p.error("--jobs, --concurrency and --processes must be >= 1")
    u = urlparse(args.redis_url)
    if not (u.scheme == "unix" or (u.scheme == "redis"
                                   and u.hostname in ("127.0.0.1", "localhost", "::1"))):
        p.error(f"--redis-url must be redis://127.0.0.1... or unix://...; got {args.redis_url!r}")
    return args


def main(make_peer: Callable[[argparse.Namespace], Peer], doc: str,
         argv: Sequence[str] | None = None, runner_class: type[Runner] = Runner) -> int:
    args = parse_args(argv, doc)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ["BENCH_REDIS_URL"] = args.redis_url
    peer = make_peer(args)
    with tempfile.TemporaryDirectory(prefix=f"{peer.system}-adapter-") as tmp:
        runner = runner_class(peer, args, Path(tmp))
        try:
            result = runner.run()
        except (BenchError, redis.RedisError, OSError, NotImplementedError) as exc:
            log(f"{peer.system} adapter, {args.workload}: {type(exc).__name__}: {exc}")
            return 1
        finally:
            for w in runner.workers:
                w.kill()
    print(json.dumps(result))
    return 0
