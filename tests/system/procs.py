"""A small harness for the system tests: real ``roadie run`` processes.

``Harness.spawn()`` starts ``python -m roadie run -r sysjobs.py ...`` with its own
log file and waits until the process has registered in ``processes``; a ``Proc``
is signalled, killed, waited for, and shows its log when a test fails (see
``conftest.py``). Every process a harness started is killed when it closes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import redis
from helpers import wait_until

HERE = Path(__file__).resolve().parent
SYSJOBS = HERE / "sysjobs.py"

#: Short intervals so that the tests run in seconds; a test overrides what it studies.
FAST_ENV = {
    "ROADIE_HEARTBEAT_INTERVAL_S": "0.5",
    "ROADIE_PROCESS_TTL_S": "2",
    "ROADIE_JANITOR_INTERVAL_S": "0.5",
    "ROADIE_POLL_INTERVAL_FIXED_S": "0.5",
}

#: Production defaults (what ``Config`` ships with), for tests that prove them.
DEFAULT_ENV = {
    "ROADIE_HEARTBEAT_INTERVAL_S": "5",
    "ROADIE_PROCESS_TTL_S": "15",
    "ROADIE_JANITOR_INTERVAL_S": "5",
}


def base_env(url: str) -> dict[str, str]:
    """The test's environment without any ROADIE_* setting that would leak in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ROADIE_") and k not in ("REDIS_PROVIDER",)}
    env["REDIS_URL"] = url
    env["PYTHONUNBUFFERED"] = "1"
    # A ROADIE_REDIS_SERVER binary choice is harmless and useful to keep, and so is
    # a run of the suite with speed mechanisms off (tests/conftest.py).
    for kept in ("ROADIE_REDIS_SERVER", "ROADIE_SPEEDUPS_OFF"):
        if kept in os.environ:
            env[kept] = os.environ[kept]
    return env


class Proc:
    """One ``roadie run`` process."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path,
                 cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            argv, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.started = time.monotonic()
        self.identity: str | None = None

    def __repr__(self) -> str:
        return f"<Proc {self.name} pid={self.pid} rc={self.popen.poll()}>"

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    # --- registration ------------------------------------------------------
    def find_identity(self, r: redis.Redis) -> str | None:
        """This process's identity if it is in ``processes`` (hostname:pid:hex)."""
        if self.identity is not None:
            return self.identity
        for member in r.smembers("processes"):
            ident = member.decode()
            parts = ident.rsplit(":", 2)
            if len(parts) == 3 and parts[1] == str(self.pid):
                self.identity = ident
                return ident
        return None

    def wait_registered(self, r: redis.Redis, timeout: float = 20.0) -> str:
        def check() -> str | None:
            if not self.alive:
                raise AssertionError(f"{self} exited before registering:\n{self.tail()}")
            return self.find_identity(r)

        return wait_until(check, timeout, 0.05, f"{self} did not register in processes")

    def info(self, r: redis.Redis) -> dict[str, str]:
        """Its Sidekiq process hash (quiet, busy, beat, info...)."""
        assert self.identity is not None
        return {k.decode(): v.decode() for k, v in r.hgetall(self.identity).items()}

    def beat(self, r: redis.Redis) -> float:
        """Time of its last heartbeat (0.0 if none)."""
        assert self.identity is not None
        raw = r.hget(self.identity, "beat")
        return float(raw) if raw else 0.0

    def wait_beats(self, r: redis.Redis, count: int, timeout: float = 20.0) -> None:
        """Wait until the process has written ``count`` more heartbeats."""
        seen = [self.beat(r)]

        def check() -> bool:
            now = self.beat(r)
            if now != seen[-1]:
                seen.append(now)
            return len(seen) > count

        wait_until(check, timeout, 0.02, f"{self} did not beat {count} times")

    # --- signals and exit ----------------------------------------------------
    def send(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> float:
        """SIGKILL and reap; returns the time (monotonic) of the kill."""
        at = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self.popen.wait(10)
        return at

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self} still running after {timeout:g}s:\n{self.tail()}"
            ) from None

    def close(self) -> None:
        if self.alive:
            self.kill()
        self._log.close()

    # --- output --------------------------------------------------------------
    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


class Harness:
    """Starts roadie processes against one Redis; kills all of them on ``close()``."""

    def __init__(self, url: str, workdir: Path, env: Mapping[str, str] | None = None,
                 jobs: Path = SYSJOBS) -> None:
        self.url = url
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.jobs = jobs
        self.env = {**base_env(url), **FAST_ENV, **(env or {})}
        self.procs: list[Proc] = []

    def spawn(self, *args: str, env: Mapping[str, str] | None = None,
              r: redis.Redis | None = None, timeout: float = 20.0) -> Proc:
        """Start ``roadie run -r sysjobs.py *args``; with ``r``, wait until registered."""
        name = f"p{len(self.procs) + 1}"
        argv = [sys.executable, "-m", "roadie", "run", "-r", str(self.jobs), *args]
        # The working folder is the test's own: no stray roadie.toml is picked up.
        proc = Proc(name, argv, {**self.env, **(env or {})},
                    self.workdir / f"{name}.log", self.workdir)
        self.procs.append(proc)
        if r is not None:
            proc.wait_registered(r, timeout)
        return proc

    def alive(self) -> list[Proc]:
        return [p for p in self.procs if p.alive]

    def close(self) -> None:
        for p in self.procs:
            p.close()

    def report(self, lines: int = 60) -> str:
        out = []
        for p in self.procs:
            out.append(f"--- {p.name} pid={p.pid} rc={p.returncode} {' '.join(p.argv[3:])}")
            out.append(p.tail(lines))
        return "\n".join(out)

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --- reading roadie's state ----------------------------------------------------
def inflight_keys(r: redis.Redis) -> list[bytes]:
    return sorted(r.scan_iter(match="roadie:inflight:*", count=1000))


def inflight_total(r: redis.Redis) -> int:
    return sum(int(r.llen(k)) for k in inflight_keys(r))


def queue_total(r: redis.Redis) -> int:
    return sum(int(r.llen(k)) for k in r.scan_iter(match="queue:*", count=1000))


def left_anywhere(r: redis.Redis) -> dict[str, int]:
    """Jobs still somewhere roadie keeps them (all zero when a run is fully done)."""
    return {
        "queues": queue_total(r),
        "inflight": inflight_total(r),
        "schedule": int(r.zcard("schedule")),
        "retry": int(r.zcard("retry")),
        "dead": int(r.zcard("dead")),
    }


def poll(predicate: Callable[[], Any], timeout: float, message: str) -> Any:
    """``wait_until`` with a slightly gentler interval, for heavier checks."""
    return wait_until(predicate, timeout, 0.1, message)
