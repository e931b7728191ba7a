#!/usr/bin/env python
"""Core benchmarks of roadie: push rates, throughput, the ceiling, push->start latency.

Run from the repository root::

    .venv/bin/python benchmarks/core.py                  # 3 runs, print the table
    .venv/bin/python benchmarks/core.py --runs 3 --write # ... and update docs/performance.md
    .venv/bin/python benchmarks/core.py --profile        # cProfile of one processor's loop
    .venv/bin/python benchmarks/core.py --breakdown      # that loop vs its bare Redis commands

Without ``--redis-url`` a private redis-server (no AOF) is started for the run and
removed afterwards, so a fresh machine needs nothing else. Every phase has a
deadline, every roadie process started here is killed in a ``finally`` block, and
the only traffic is to 127.0.0.1 or a unix socket. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import math
import os
import platform
import pstats
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DOC = ROOT / "docs" / "performance.md"
START_MARK = "<!-- benchmarks/core.py:start (generated; edit the script, not this) -->"
END_MARK = "<!-- benchmarks/core.py:end -->"

# benchjobs reads its Redis URL from the environment when it is first used.
sys.path.insert(0, str(HERE))


class BenchError(Exception):
    """A phase failed (timeout, process died, wrong count): reported, never hidden."""


# --- small helpers -------------------------------------------------------------
def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def load1() -> float:
    return os.getloadavg()[0]


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a live process (all its threads)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_times() -> list[int]:
    """The machine's ``cpu`` line of /proc/stat: user nice system idle iowait irq softirq steal."""
    with contextlib.suppress(OSError, ValueError):
        return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return []


def machine_busy(before: list[int], after: list[int]) -> tuple[float, float] | None:
    """(% of all CPUs busy, % stolen by the hypervisor) between two ``cpu_times()``."""
    if len(before) < 8 or len(after) < 8:
        return None
    d = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(d)
    if total <= 0:
        return None
    idle = d[3] + d[4]
    return 100.0 * (total - idle - d[7]) / total, 100.0 * d[7] / total


def check_local(url: str) -> None:
    """The benchmark talks only to 127.0.0.1 or a unix socket."""
    u = urlparse(url)
    if u.scheme == "unix":
        return
    if u.scheme == "redis" and u.hostname in ("127.0.0.1", "localhost", "::1"):
        return
    raise SystemExit(f"--redis-url must be redis://127.0.0.1... or unix://...; got {url!r}")


#: Set by ``bench.py --speedups-off``: roadie's processes run with those mechanisms off.
SPEEDUPS_OFF_VAR = "BENCH_ROADIE_SPEEDUPS_OFF"


def child_env(url: str) -> dict[str, str]:
    """The environment of a roadie process: no stray ROADIE_* or REDIS_* settings."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("ROADIE_") and k not in ("REDIS_URL", "REDIS_PROVIDER")
    }
    env["REDIS_URL"] = url
    env["BENCH_REDIS_URL"] = url
    # bench.py --speedups-off: the one roadie setting a run may change on purpose.
    off = os.environ.get(SPEEDUPS_OFF_VAR)
    if off:
        env["ROADIE_SPEEDUPS_OFF"] = off
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    return env


def roadie_argv(url: str, concurrency: int, queues: Sequence[str]) -> list[str]:
    argv = [sys.executable, "-m", "roadie", "run", "-r", "benchjobs",
            "-c", str(concurrency), "--log-level", "WARNING", "--redis-url", url]
    for q in queues:
        argv += ["-q", q]
    return argv


# --- one real roadie process -----------------------------------------------------
class RoadieProcess:
    """``python -m roadie run`` as a child; always gone when the ``with`` block ends."""

    def __init__(self, url: str, concurrency: int, queues: Sequence[str], log_path: Path,
                 r: redis.Redis) -> None:
        self.argv = roadie_argv(url, concurrency, queues)
        self.env = child_env(url)
        self.log_path = log_path
        self.r = r
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.identity = ""

    def __enter__(self) -> RoadieProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def start(self) -> float:
        log = self.log_path.open("ab")
        try:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                self.argv, cwd=HERE, env=self.env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
            )
        finally:
            log.close()  # the child has its own copy
        return self.started

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
            return "\n".join(f"    {line}" for line in text) or "    (empty log)"
        return "    (no log)"

    def alive_or_raise(self, what: str) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise BenchError(f"roadie exited (code {self.proc.returncode}) while {what}; "
                             f"log {self.log_path}:\n{self.log_tail()}")

    def wait_ready(self, deadline: float) -> float:
        """Until the process's first heartbeat put it in ``processes``; returns that time."""
        marker = f":{self.pid}:".encode()
        while True:
            for ident in self.r.smembers("processes"):
                if isinstance(ident, bytes) and marker in ident:
                    self.identity = ident.decode()
                    return time.monotonic()
            self.alive_or_raise("starting")
            if time.monotonic() > deadline:
                raise BenchError(f"roadie did not start in time; log:\n{self.log_tail()}")
            time.sleep(0.005)

    def wait_drained(self, queue_key: str, deadline: float, poll_s: float = 0.005) -> float:
        """Until the queue and this process's in-flight list are both empty."""
        inflight = f"roadie:inflight:{self.identity}"
        while True:
            pipe = self.r.pipeline(transaction=False)
            pipe.llen(queue_key)
            pipe.llen(inflight)
            queued, running = pipe.execute()
            if queued == 0 and running == 0:
                return time.monotonic()
            self.alive_or_raise("draining")
            if time.monotonic() > deadline:
                raise BenchError(f"not drained in time: {queued} queued, {running} in flight")
            time.sleep(poll_s)

    def cpu_s(self) -> float | None:
        return None if self.proc is None else proc_cpu_s(self.proc.pid)

    def stop(self, timeout: float = 30.0) -> int | None:
        """TERM (a clean shutdown that flushes stats), then KILL if it takes too long."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError(f"roadie did not stop within {timeout:g} s after TERM") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)


# --- the benchmark -------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    key: str
    label: str
    fmt: str  # format spec for one value


ROWS = [
    Row("load_start", "1-min load average at start of run", ".2f"),
    Row("push_bulk", "push: perform_bulk, jobs/s (N jobs, batches of 1,000)", ",.0f"),
    Row("push_async", "push: perform_async one at a time, jobs/s", ",.0f"),
    Row("noop_total", "no-op: jobs/s, from process start to drained", ",.0f"),
    Row("noop_after_ready", "no-op: jobs/s, from first heartbeat to drained", ",.0f"),
    Row("noop_startup", "no-op: process start to first heartbeat, s", ".2f"),
    Row("noop_cpu_us", "no-op: roadie process CPU per job, µs", ",.0f"),
    Row("noop_redis_cpu_us", "no-op: redis-server CPU per job, µs", ",.0f"),
    Row("noop_busy", "no-op: whole machine CPU busy while draining, % (all processes)", ".0f"),
    Row("noop_steal", "no-op: CPU stolen by the hypervisor while draining, %", ".1f"),
    Row("noop_stat", "no-op: stat:processed after clean stop (expect N)", ",.0f"),
    Row("one_total", "one-call: jobs/s, from process start to drained", ",.0f"),
    Row("one_after_ready", "one-call: jobs/s, from first heartbeat to drained", ",.0f"),
    Row("one_cpu_us", "one-call: roadie process CPU per job, µs", ",.0f"),
    Row("one_busy", "one-call: whole machine CPU busy while draining, %", ".0f"),
    Row("one_steal", "one-call: CPU stolen by the hypervisor while draining, %", ".1f"),
    Row("one_runs", "one-call: distinct jobs that ran (expect N)", ",.0f"),
    Row("one_dupes", "one-call: extra runs, i.e. duplicates (expect 0)", ",.0f"),
    Row("ceiling", "ceiling: one-call body in a plain loop, 1 thread, no queue, jobs/s", ",.0f"),
    Row("ratio", "ratio: roadie one-call (from first heartbeat) / ceiling", ".2f"),
    Row("lat1_p50", "latency, 1 queue: push->start p50, ms", ".2f"),
    Row("lat1_p99", "latency, 1 queue: push->start p99, ms", ".2f"),
    Row("lat1_max", "latency, 1 queue: push->start max, ms", ".2f"),
    Row("lat3_p50", "latency, 3 queues (-q a -q b -q c, push to c): p50, ms", ".2f"),
    Row("lat3_p99", "latency, 3 queues: p99, ms", ".2f"),
    Row("lat3_max", "latency, 3 queues: max, ms", ".2f"),
    Row("load_end", "1-min load average at end of run", ".2f"),
]


PHASES = ("push", "noop", "onecall", "ceiling", "lat1", "lat3")


class Bench:
    def __init__(self, args: argparse.Namespace, url: str, workdir: Path) -> None:
        self.args = args
        self.url = url
        self.workdir = workdir
        self.r = redis.Redis.from_url(url)
        self.notes: list[str] = []
        os.environ["BENCH_REDIS_URL"] = url
        import roadie
        from roadie.config import Config

        roadie.configure(Config(redis_url=url, redis_url_configured=True))
        import benchjobs

        self.jobs = benchjobs

    # --- helpers ------------------------------------------------------------
    def flush(self) -> None:
        self.r.flushdb()

    def redis_cpu_s(self) -> float:
        info = self.r.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def deadline(self) -> float:
        return time.monotonic() + float(self.args.phase_timeout)

    def process(self, name: str, queues: Sequence[str]) -> RoadieProcess:
        return RoadieProcess(self.url, self.args.concurrency, queues,
                             self.workdir / f"{name}.log", self.r)

    # --- phases ---------------------------------------------------------------
    def push_rates(self, out: dict[str, float]) -> None:
        n, m = self.args.jobs, self.args.async_jobs
        noop = self.jobs.Noop
        self.flush()
        t0 = time.perf_counter()
        for i in range(m):
            noop.perform_async(i)
        out["push_async"] = m / (time.perf_counter() - t0)
        if self.r.llen("queue:default") != m:
            raise BenchError("perform_async: queue length is not the number pushed")
        self.flush()
        args = [[i] for i in range(n)]
        t0 = time.perf_counter()
        noop.perform_bulk(args)
        out["push_bulk"] = n / (time.perf_counter() - t0)
        if self.r.llen("queue:default") != n:
            raise BenchError("perform_bulk: queue length is not the number pushed")

    def drain(self, name: str, job: Any, out: dict[str, float]) -> None:
        """Push N jobs, start one roadie process, time it until everything is done."""
        n = self.args.jobs
        self.flush()
        job.perform_bulk([[i] for i in range(n)])
        with self.process(f"{name}-{self.run_no}", ["default"]) as rp:
            t0 = rp.start()
            deadline = self.deadline()
            ready = rp.wait_ready(deadline)
            cpu_ready = rp.cpu_s()
            redis_cpu0 = self.redis_cpu_s()
            machine0 = cpu_times()
            done = rp.wait_drained("queue:default", deadline)
            machine1 = cpu_times()
            cpu_done = rp.cpu_s()
            redis_cpu1 = self.redis_cpu_s()
            rp.stop()
        out[f"{name}_total"] = n / (done - t0)
        out[f"{name}_after_ready"] = n / (done - ready)
        out[f"{name}_startup"] = ready - t0
        if cpu_ready is not None and cpu_done is not None:
            out[f"{name}_cpu_us"] = (cpu_done - cpu_ready) / n * 1e6
        out[f"{name}_redis_cpu_us"] = (redis_cpu1 - redis_cpu0) / n * 1e6
        busy = machine_busy(machine0, machine1)
        if busy is not None:
            out[f"{name}_busy"], out[f"{name}_steal"] = busy
        out[f"{name}_stat"] = int(self.r.get("stat:processed") or 0)
        if out[f"{name}_stat"] != n:
            self.notes.append(f"run {self.run_no}, {name}: stat:processed is "
                              f"{out[f'{name}_stat']:.0f}, expected {n}")
        left = [str(k) for k in self.r.keys("roadie:inflight:*")]
        if left:
            self.notes.append(f"run {self.run_no}, {name}: in-flight lists left: {left}")

    def one_call(self, out: dict[str, float]) -> None:
        n = self.args.jobs
        self.drain("one", self.jobs.OneCall, out)
        counts = [int(v) for v in self.r.hvals(self.jobs.RUNS_KEY)]
        out["one_runs"] = len(counts)
        out["one_dupes"] = sum(counts) - len(counts)
        if len(counts) != n or sum(counts) != n:
            self.notes.append(f"run {self.run_no}, one-call: {len(counts)} distinct jobs ran, "
                              f"{sum(counts)} runs in all; expected {n} and {n}")

    def ceiling(self, out: dict[str, float]) -> None:
        n = self.args.jobs
        self.flush()
        job = self.jobs.OneCall()
        job.perform(-1)  # connect outside the timed loop, as the process has by then
        self.flush()
        t0 = time.perf_counter()
        for i in range(n):
            job.perform(i)
        out["ceiling"] = n / (time.perf_counter() - t0)
        if self.r.hlen(self.jobs.RUNS_KEY) != n:
            raise BenchError("ceiling loop: wrong number of runs recorded")

    def latency(self, prefix: str, queues: Sequence[str], push_to: str,
                out: dict[str, float]) -> None:
        count, every = self.args.latency_jobs, self.args.latency_interval_ms / 1000
        key = self.jobs.LATENCY_KEY
        self.flush()
        setter = self.jobs.Latency.set(queue=push_to)
        with self.process(f"{prefix}-{self.run_no}", queues) as rp:
            rp.start()
            rp.wait_ready(self.deadline())
            # Idle long enough that every processor has gone round to a blocking fetch.
            time.sleep(self.args.settle_s)
            t0 = time.perf_counter()
            for i in range(count):
                delay = t0 + i * every - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                setter.perform_async()
            deadline = self.deadline()
            while self.r.llen(key) < count:
                rp.alive_or_raise("running latency jobs")
                if time.monotonic() > deadline:
                    raise BenchError(f"{prefix}: only {self.r.llen(key)} of {count} jobs ran")
                time.sleep(0.01)
            rp.stop()
        values = sorted(float(v) * 1000 for v in self.r.lrange(key, 0, -1))
        out[f"{prefix}_p50"] = percentile(values, 0.50)
        out[f"{prefix}_p99"] = percentile(values, 0.99)
        out[f"{prefix}_max"] = values[-1]
        slow = sum(1 for v in values if v > 100)
        if slow:
            self.notes.append(f"run {self.run_no}, {prefix}: {slow} of {count} jobs started "
                              "more than 100 ms after their push")

    def run_once(self, run_no: int) -> dict[str, float]:
        self.run_no = run_no
        out: dict[str, float] = {"load_start": load1()}
        phases: list[tuple[str, str, Callable[[], None]]] = [
            ("push", "push rates", lambda: self.push_rates(out)),
            ("noop", "no-op throughput", lambda: self.drain("noop", self.jobs.Noop, out)),
            ("onecall", "one-call throughput", lambda: self.one_call(out)),
            ("ceiling", "ceiling", lambda: self.ceiling(out)),
            ("lat1", "latency, 1 queue",
             lambda: self.latency("lat1", ["default"], "default", out)),
            ("lat3", "latency, 3 queues",
             lambda: self.latency("lat3", ["a", "b", "c"], "c", out)),
        ]
        for key, name, phase in phases:
            if key not in self.args.phases:
                continue
            progress(f"run {run_no}: {name} ...")
            try:
                phase()
            except (BenchError, redis.RedisError) as exc:
                self.notes.append(f"run {run_no}, {name}: FAILED: {exc}")
                progress(f"run {run_no}: {name} FAILED: {exc}")
        if "one_after_ready" in out and "ceiling" in out:
            out["ratio"] = out["one_after_ready"] / out["ceiling"]
        out["load_end"] = load1()
        self.flush()
        return out

    # --- in-process: profile and breakdown ------------------------------------------
    def one_processor(self, prof: cProfile.Profile | None = None) -> tuple[float, float, Any]:
        """Run one roadie Processor's loop in this thread over N no-op jobs until drained.

        Returns (wall seconds, CPU seconds of this process, the launcher).
        """
        from roadie import log as roadie_log
        from roadie.config import Config
        from roadie.server.launcher import Launcher

        self.flush()
        self.jobs.Noop.perform_bulk([[i] for i in range(self.args.jobs)])
        roadie_log.setup("WARNING", stream=sys.stderr)
        cfg = Config(redis_url=self.url, redis_url_configured=True, concurrency=1,
                     log_level="WARNING")
        launcher = Launcher(cfg)
        launcher.check_redis()
        launcher.heartbeat.beat()
        processor = launcher._processor(0)
        processor._block_timeout = 0.05  # do not count a 2 s idle wait at the end
        inflight = f"roadie:inflight:{launcher.identity}"
        stop_at = self.deadline()

        def watch() -> None:
            probe = redis.Redis.from_url(self.url)
            while time.monotonic() < stop_at:
                if probe.llen("queue:default") == 0 and probe.llen(inflight) == 0:
                    break
                time.sleep(0.01)
            launcher.state.quiet.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        t0, c0 = time.perf_counter(), time.process_time()
        if prof is not None:
            prof.enable()
        try:
            processor.run()
        finally:
            if prof is not None:
                prof.disable()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            launcher.heartbeat.clear()
        return wall, cpu, launcher

    def profile(self, top: int, out_file: str | None) -> str:
        """cProfile one processor's loop (in this process) over N no-op jobs."""
        n = self.args.jobs
        prof = cProfile.Profile()
        elapsed, _, _ = self.one_processor(prof)
        if out_file:
            prof.dump_stats(out_file)
        lines = [f"one processor, {n:,} no-op jobs, {elapsed:.2f} s under cProfile "
                 f"({n / elapsed:,.0f} jobs/s; cProfile slows Python code down)", ""]
        for order in ("tottime", "cumulative"):
            buf = io.StringIO()
            stats = pstats.Stats(prof, stream=buf)
            stats.sort_stats(order).print_stats(top)
            lines.append(f"--- sorted by {order} ---")
            lines.append(_trim_stats(buf.getvalue()))
        return "\n".join(lines)

    def breakdown(self) -> str:
        """Where one no-op job's time goes: roadie's loop vs its bare Redis commands."""
        from roadie.scripts import Scripts

        n = self.args.jobs
        rows: list[tuple[str, float, float]] = []
        wall, cpu, launcher = self.one_processor()
        rows.append(("roadie Processor loop, 1 thread, no-op job", wall / n, cpu / n))
        fetcher = launcher.fetcher

        def timed(label: str, body: Callable[[], object], count: int) -> None:
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(count):
                body()
            rows.append((label, (time.perf_counter() - t0) / count,
                         (time.process_time() - c0) / count))

        def fetch_ack() -> None:
            fetcher.ack(fetcher.fetch(1)[0])

        self.flush()
        self.jobs.Noop.perform_bulk([[i] for i in range(n)])
        timed("bare Fetcher.fetch(1) + Fetcher.ack(), roadie's client", fetch_ack, n)
        single = redis.Redis.from_url(self.url, single_connection_client=True)
        inflight = fetcher.inflight

        def lmove_lrem() -> None:
            raw: Any = single.lmove("queue:default", inflight, "RIGHT", "LEFT")
            single.lrem(inflight, 1, raw)

        self.flush()
        self.jobs.Noop.perform_bulk([[i] for i in range(n)])
        timed("bare LMOVE + LREM, one dedicated connection", lmove_lrem, n)
        self.flush()
        for name, client in (("roadie's pool", launcher.redis), ("dedicated", single)):
            sc = Scripts(client)
            timed(f"one EVALSHA fetch (empty queue), {name}",
                  partial(sc.fetch, inflight, ["queue:x"], 1), n // 2)
            timed(f"one LMOVE (empty queue), {name}",
                  partial(client.lmove, "queue:x", inflight, "RIGHT", "LEFT"), n // 2)
            timed(f"one PING, {name}", client.ping, n // 2)
        self.flush()
        lines = [f"1-min load average {load1():.2f}", "",
                 "| what (per job or per command) | wall, µs | CPU of this process, µs |",
                 "|---|---:|---:|"]
        lines += [f"| {label} | {w * 1e6:,.0f} | {c * 1e6:,.0f} |" for label, w, c in rows]
        return "\n".join(lines)


def _trim_stats(text: str) -> str:
    """pstats output without its header lines, with long paths shortened."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("Ordered by", "List reduced")):
            continue
        line = line.replace(str(ROOT) + "/", "")
        line = re.sub(r"\S*/site-packages/", "", line)
        line = re.sub(r"\S*/lib/python3\.\d+/", "", line)
        out.append(line)
    return "\n".join(out)


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the report ------------------------------------------------------------------------
def machine_info(r: redis.Redis, server_binary: str | None) -> list[tuple[str, str]]:
    import redis.utils

    import roadie

    info = r.info("server")
    redis_desc = str(info.get("redis_version"))
    if server_binary:
        redis_desc += f" (private server, no AOF: {server_binary})"
    else:
        redis_desc += " (given with --redis-url)"
    return [
        ("date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        ("CPUs (nproc)", str(len(os.sched_getaffinity(0)))),
        ("CPU model", cpu_model()),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("redis-server", redis_desc),
        ("redis-py", f"{redis.__version__} (hiredis: "
                     f"{'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'})"),
        ("roadie", f"{roadie.__version__}, {source_revision()}"),
    ]


def source_revision() -> str:
    """The commit measured, and whether src/ had uncommitted changes (others' work)."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    changed = len(dirty.stdout.splitlines())
    suffix = f" + uncommitted changes to {changed} file(s) in src/" if changed else ""
    return f"commit {head.stdout.strip()}{suffix}"


def fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, spec)


def render(args: argparse.Namespace, results: list[dict[str, float]],
           machine: list[tuple[str, str]], notes: list[str], command: str) -> str:
    n = args.jobs
    head = ["| measure | median | " + " | ".join(f"run {i + 1}" for i in range(len(results)))
            + " |", "|---|---:|" + "---:|" * len(results)]
    body = []
    for row in ROWS:
        values = [res.get(row.key) for res in results]
        present = [v for v in values if v is not None]
        med = statistics.median(present) if present else None
        label = row.label.replace(" N", f" {n:,}").replace("(N ", f"({n:,} ")
        body.append(f"| {label} | **{fmt(med, row.fmt)}** | "
                    + " | ".join(fmt(v, row.fmt) for v in values) + " |")
    roadie_cmd = shlex.join(["python", "-m", "roadie", "run", "-r", "benchjobs", "-c",
                             str(args.concurrency), "--log-level", "WARNING",
                             "--redis-url", "redis://127.0.0.1:<port>/0"])
    lines = [
        f"Settings: {n:,} jobs per throughput phase, `-c {args.concurrency}`, "
        f"{args.async_jobs:,} jobs for perform_async, {args.latency_jobs} latency jobs "
        f"pushed every {args.latency_interval_ms:g} ms, {len(results)} run(s); "
        "**median** of the runs in bold.",
        "",
        *head,
        *body,
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
        "Each roadie process is started (in `benchmarks/`) as:",
        "",
        "```",
        roadie_cmd + "   # latency: -q default, or -q a -q b -q c",
        "```",
    ]
    if notes:
        lines += ["", "Notes from this run:", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def write_doc(path: Path, block: str) -> None:
    section = f"{START_MARK}\n{block}{END_MARK}\n"
    if path.exists():
        text = path.read_text()
        start, end = text.find(START_MARK), text.find(END_MARK)
        if start != -1 and end > start:
            rest = text[end + len(END_MARK):]
            text = text[:start] + section + rest.removeprefix("\n")
        else:
            text = text.rstrip("\n") + "\n\n" + section
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"# Performance\n\n{section}"
    path.write_text(text)


# --- main ----------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", help="a local Redis to use (127.0.0.1 or unix socket); "
                   "default: start a private redis-server")
    p.add_argument("--flush", action="store_true",
                   help="with --redis-url: allow FLUSHDB of a database that is not empty")
    p.add_argument("--runs", type=int, default=3, help="runs; the report gives medians")
    p.add_argument("--jobs", type=int, default=20_000, help="jobs per throughput phase")
    p.add_argument("--async-jobs", type=int, default=5_000,
                   help="jobs pushed one at a time with perform_async")
    p.add_argument("--concurrency", "-c", type=int, default=10)
    p.add_argument("--latency-jobs", type=int, default=500)
    p.add_argument("--latency-interval-ms", type=float, default=10.0)
    p.add_argument("--settle-s", type=float, default=3.0,
                   help="idle time before the latency pushes start")
    p.add_argument("--phase-timeout", type=float, default=300.0,
                   help="seconds any one phase may take")
    p.add_argument("--phases", type=lambda v: v.split(","), default=list(PHASES),
                   help=f"comma-separated subset of {','.join(PHASES)} (default: all)")
    p.add_argument("--write", nargs="?", const=str(DEFAULT_DOC), metavar="PATH",
                   help=f"update the table in PATH (default {DEFAULT_DOC.relative_to(ROOT)})")
    p.add_argument("--profile", action="store_true",
                   help="instead: cProfile one processor's loop over --jobs no-op jobs")
    p.add_argument("--breakdown", action="store_true",
                   help="instead: time one processor's loop against its bare Redis commands")
    p.add_argument("--profile-out", help="with --profile: also dump the stats to this file")
    p.add_argument("--profile-top", type=int, default=30)
    args = p.parse_args(argv)
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        p.error(f"unknown phase(s) {', '.join(sorted(unknown))}; choose from {','.join(PHASES)}")
    if args.runs < 1 or args.jobs < 1 or args.async_jobs < 1 or args.latency_jobs < 1:
        p.error("--runs, --jobs, --async-jobs and --latency-jobs must be >= 1")
    return args


def command_line() -> str:
    exe = Path(sys.executable)
    with contextlib.suppress(ValueError):
        exe = exe.relative_to(Path.cwd())
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(Path.cwd())
    return shlex.join([str(exe), str(script), *sys.argv[1:]])


@contextlib.contextmanager
def redis_for(args: argparse.Namespace) -> Iterator[tuple[str, str | None]]:
    if args.redis_url:
        check_local(args.redis_url)
        r = redis.Redis.from_url(args.redis_url)
        if r.dbsize() and not args.flush:
            raise SystemExit(f"{args.redis_url} is not empty and the benchmark flushes it; "
                             "use an empty database, or pass --flush")
        yield args.redis_url, None
        return
    from roadie.embedded import RedisServer, find_redis_server

    with RedisServer(appendonly=False) as server:
        yield server.url, find_redis_server()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line()
    # TERM must unwind through the finally blocks that kill roadie and redis-server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with redis_for(args) as (url, binary), tempfile.TemporaryDirectory(
        prefix="roadie-bench-"
    ) as tmp:
        bench = Bench(args, url, Path(tmp))
        if args.profile:
            print(bench.profile(args.profile_top, args.profile_out))
            bench.flush()
            return 0
        if args.breakdown:
            print(bench.breakdown())
            return 0
        results = []
        for i in range(args.runs):
            results.append(bench.run_once(i + 1))
        machine = machine_info(bench.r, binary)
        report = render(args, results, machine, bench.notes, command)
    print(report)
    if args.write:
        write_doc(Path(args.write), report)
        progress(f"wrote the table into {args.write}")
    failed = any("FAILED" in note or "expected" in note for note in bench.notes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
