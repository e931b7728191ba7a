#!/usr/bin/env python
"""Chaos run: roadie processes killed with -9 at random while they work; count every job.

Run from the repository root::

    .venv/bin/python benchmarks/chaos.py                        # 10,000 jobs, 3 processes
    .venv/bin/python benchmarks/chaos.py --jobs 1000 --kill-interval 0.5
    .venv/bin/python benchmarks/chaos.py --redis-url redis://127.0.0.1:6379/15 --flush

It pushes ``--jobs`` jobs, starts ``--processes`` ``roadie run`` processes, and kills
one of them with SIGKILL at random about every ``--kill-interval`` seconds (starting
a new one at once) until every job has run and nothing is left in any queue,
in-flight list, schedule, retry or dead set. Then it prints the account: pushed, runs,
duplicates, lost, left anywhere, and how long each kill took to be recovered (kill ->
the victim's in-flight list emptied by another process's janitor). Exit code 1 if a
job was lost, something was left, or the deadline passed.

This file is also the jobs module the processes load (``-r benchmarks/chaos.py``):
each job sleeps ``--job-ms`` and then counts its run with ``HINCRBY chaos:runs <jid> 1``,
so a job killed before its end does not count, and one that ran twice counts twice
(``INCR chaos:starts`` at the start counts the runs that were cut short).

Without ``--redis-url`` a private redis-server (AOF on, appendfsync everysec, as in
production) is started for the run and removed afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import redis

import roadie

RUNS = "chaos:runs"
STARTS = "chaos:starts"
HERE = Path(__file__).resolve()

_lock = threading.Lock()
_client: redis.Redis | None = None


def rdb() -> redis.Redis:
    global _client
    with _lock:
        if _client is None:
            _client = redis.Redis.from_url(os.environ["REDIS_URL"])
        return _client


class Work(roadie.Job, name="chaos.Work"):
    """Takes ``ms`` milliseconds, then counts its run (only a finished run counts)."""

    def perform(self, ms: int) -> None:
        rdb().incr(STARTS)
        if ms:
            time.sleep(ms / 1000.0)
        rdb().hincrby(RUNS, self.jid, 1)


# --- the run ------------------------------------------------------------------
class Proc:
    def __init__(self, args: argparse.Namespace, url: str, logdir: Path, n: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROADIE_")}
        env.update({
            "REDIS_URL": url,
            "PYTHONUNBUFFERED": "1",
            "ROADIE_HEARTBEAT_INTERVAL_S": str(args.heartbeat),
            "ROADIE_PROCESS_TTL_S": str(args.process_ttl),
            "ROADIE_JANITOR_INTERVAL_S": str(args.janitor),
            # Chaos may catch a job in flight many times: it must never be buried.
            "ROADIE_MAX_CRASHES": "1000000",
        })
        if "ROADIE_REDIS_SERVER" in os.environ:
            env["ROADIE_REDIS_SERVER"] = os.environ["ROADIE_REDIS_SERVER"]
        self.log_path = logdir / f"p{n}.log"
        self._log = self.log_path.open("wb")
        argv = [sys.executable, "-m", "roadie", "run", "-r", str(HERE),
                "-c", str(args.concurrency), "--log-level", args.log_level]
        self.popen = subprocess.Popen(
            argv, env=env, cwd=logdir, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.identity: str | None = None

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def find_identity(self, r: redis.Redis) -> str | None:
        if self.identity is None:
            for member in r.smembers("processes"):
                ident = member.decode()
                if ident.rsplit(":", 2)[1:2] == [str(self.popen.pid)]:
                    self.identity = ident
        return self.identity

    def wait_registered(self, r: redis.Redis, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while (ident := self.find_identity(r)) is None:
            if not self.alive or time.monotonic() > deadline:
                raise RuntimeError(f"process {self.popen.pid} did not start:\n{self.tail()}")
            time.sleep(0.02)
        return ident

    def kill(self) -> float:
        at = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self.popen.wait(10)
        return at

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.popen.returncode

    def tail(self, lines: int = 20) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def left_anywhere(r: redis.Redis) -> dict[str, int]:
    return {
        "queues": sum(int(r.llen(k)) for k in r.scan_iter(match="queue:*", count=1000)),
        "inflight": sum(int(r.llen(k))
                        for k in r.scan_iter(match="roadie:inflight:*", count=1000)),
        "schedule": int(r.zcard("schedule")),
        "retry": int(r.zcard("retry")),
        "dead": int(r.zcard("dead")),
    }


def run(args: argparse.Namespace, url: str, logdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    r = redis.Redis.from_url(url)
    if args.flush:
        r.flushdb()
    elif r.dbsize():
        raise SystemExit(f"{url} is not empty; use an empty database or pass --flush")

    roadie.configure(roadie.Config(redis_url=url, redis_url_configured=True))
    t_push = time.monotonic()
    jids = Work.perform_bulk([[args.job_ms] for _ in range(args.jobs)])
    push_s = time.monotonic() - t_push
    pushed = set(jids)
    assert len(pushed) == args.jobs

    procs: list[Proc] = []

    def start() -> Proc:
        p = Proc(args, url, logdir, len(procs) + 1)
        procs.append(p)
        p.wait_registered(r)
        return p

    slots = [start() for _ in range(args.processes)]
    t0 = time.monotonic()
    work_s = args.jobs * args.job_ms / 1000 / (args.processes * args.concurrency)
    deadline = t0 + (args.deadline or 120 + 4 * work_s)
    kills: list[tuple[float, str]] = []  # (kill time, victim's in-flight key), jobs in it
    empty_kills = 0
    recovered: list[float] = []
    next_kill = t0 + args.kill_interval
    timed_out = False
    progress_at = t0

    try:
        while True:
            now = time.monotonic()
            ran = int(r.hlen(RUNS))
            if ran == args.jobs and left_anywhere(r)["inflight"] == 0:
                break
            if now > deadline:
                timed_out = True
                break
            if now >= next_kill and r.llen("queue:default") > 0:
                i = rng.randrange(len(slots))
                victim = slots[i]
                key = f"roadie:inflight:{victim.identity}"
                at = victim.kill()
                if r.llen(key) > 0:
                    kills.append((at, key))
                else:
                    empty_kills += 1
                slots[i] = start()
                next_kill = at + args.kill_interval * (0.5 + rng.random())
            for at, key in kills[len(recovered):]:
                if r.exists(key):
                    break
                recovered.append(time.monotonic() - at)
            if now - progress_at >= 5:
                progress_at = now
                print(f"  {now - t0:5.1f}s: {ran}/{args.jobs} ran, "
                      f"{len(kills) + empty_kills} kills", flush=True)
            time.sleep(0.02)
        total_s = time.monotonic() - t0
    finally:
        codes = [p.stop() for p in slots]
        for p in procs:
            p.stop()

    runs = {k.decode(): int(v) for k, v in r.hgetall(RUNS).items()}
    left = left_anywhere(r)
    lost = len(pushed - set(runs))
    result = {
        "pushed": args.jobs,
        "push_s": push_s,
        "runs": sum(runs.values()),
        "starts": int(r.get(STARTS) or 0),
        "distinct": len(runs),
        "duplicates": sum(runs.values()) - len(runs),
        "lost": lost,
        "unknown": len(set(runs) - pushed),
        "left": left,
        "kills": len(kills) + empty_kills,
        "kills_in_flight": len(kills),
        "recovered": recovered,
        "unrecovered": len(kills) - len(recovered),
        "total_s": total_s,
        "timed_out": timed_out,
        "clean_exits": sum(1 for c in codes if c == 0),
        "processes_started": len(procs),
    }
    if timed_out or lost or sum(left.values()):
        for p in procs[-args.processes:]:
            print(f"--- {p.log_path}\n{p.tail()}")
    r.close()
    return result


def report(args: argparse.Namespace, argv: Sequence[str], res: dict[str, Any]) -> None:
    rec = res["recovered"]
    left = res["left"]
    rows = [
        ("command", "python benchmarks/chaos.py " + shlex.join(argv)),
        ("jobs pushed", f"{res['pushed']} (in {res['push_s']:.2f} s)"),
        ("runs (finished)", f"{res['runs']} of {res['distinct']} distinct jobs"),
        ("duplicates", f"{res['duplicates']} (finished twice)"),
        ("interrupted runs", f"{res['starts'] - res['runs']} (started, killed before "
                             "the end, run again)"),
        ("lost", str(res["lost"])),
        ("left anywhere", f"{sum(left.values())} "
                          + ", ".join(f"{k} {v}" for k, v in left.items())),
        ("kills (-9)", f"{res['kills']}, {res['kills_in_flight']} with jobs in flight; "
                       f"{res['processes_started']} processes started in all"),
        ("kill -> recovered", (
            f"median {statistics.median(rec):.2f} s, max {max(rec):.2f} s "
            f"({len(rec)} measured, {res['unrecovered']} not seen)" if rec else "n/a")),
        ("total", f"{res['total_s']:.1f} s"
                  + (" (DEADLINE PASSED)" if res["timed_out"] else "")),
        ("throughput", f"{res['runs'] / res['total_s']:.0f} runs/s under chaos"),
        ("settings", f"{args.processes} processes x {args.concurrency} processors, "
                     f"job {args.job_ms} ms, kill every ~{args.kill_interval:g} s, heartbeat "
                     f"{args.heartbeat:g} s, process_ttl {args.process_ttl:g} s, janitor "
                     f"{args.janitor:g} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--processes", type=int, default=3)
    p.add_argument("--kill-interval", type=float, default=1.0,
                   help="average seconds between kills (default 1.0)")
    p.add_argument("--redis-url", help="default: a private redis-server with AOF")
    p.add_argument("--flush", action="store_true",
                   help="FLUSHDB the --redis-url database first (else it must be empty)")
    p.add_argument("--concurrency", type=int, default=5, help="processors per process")
    p.add_argument("--job-ms", type=int, default=20, help="duration of one job")
    p.add_argument("--heartbeat", type=float, default=0.5, help="heartbeat_interval_s")
    p.add_argument("--process-ttl", type=float, default=2.0, help="process_ttl_s")
    p.add_argument("--janitor", type=float, default=0.5, help="janitor_interval_s")
    p.add_argument("--deadline", type=float, help="seconds before giving up")
    p.add_argument("--seed", type=int, help="random seed for the choice of victims")
    p.add_argument("--log-level", default="INFO", help="the processes' log level")
    return p.parse_args(argv)


@contextlib.contextmanager
def redis_for(args: argparse.Namespace) -> Iterator[str]:
    if args.redis_url:
        yield args.redis_url
        return
    from roadie.embedded import RedisServer

    with RedisServer(appendonly=True) as server:
        yield server.url


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="roadie-chaos-") as tmp, redis_for(args) as url:
        print(f"chaos: {args.jobs} jobs, {args.processes} processes, a kill -9 every "
              f"~{args.kill_interval:g} s, Redis {url}", flush=True)
        res = run(args, url, Path(tmp))
    report(args, argv, res)
    ok = not (res["lost"] or sum(res["left"].values()) or res["timed_out"])
    print("\nOK: nothing lost" if ok else "\nFAILED: jobs lost, left behind, or timed out")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
