"""Real child processes of a test: ``roadie run`` and any other (Sidekiq, ``manage.py
roadie run``, ``flask roadie run``).

``Harness.spawn()`` starts ``python -m roadie run -r <jobs> ...`` with its own log file
and, given a Redis client, waits until the process has registered in ``processes``;
``Harness.start()`` starts any other command the same way. A ``Proc`` is signalled,
stopped, killed, waited for, and shows its log when a test fails (the ``make_harness``
fixture, ``support/fixtures.py``). Every process a harness started is killed when it
closes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import redis

from support.wait import wait_until

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
    """The test's environment for a child process on ``url``, without any ROADIE_*
    setting (or REDIS_PROVIDER) that would leak in from the shell."""
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
    """One child process, its output (stdout and stderr) in a log file."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str],
                 log_path: Path, cwd: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._log = log_path.open("wb")
        # Its own session (and process group): a signal from the terminal running the
        # tests does not reach it, and ``close`` can kill whatever it forked.
        self.popen = subprocess.Popen(
            self.argv, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log,
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

    # --- registration (roadie run and Sidekiq alike) ------------------------------
    def find_identity(self, r: redis.Redis) -> str | None:
        """This process's identity (hostname:pid:hex) once it is in ``processes`` with
        its process hash written (Sidekiq adds the two in separate commands)."""
        if self.identity is not None:
            return self.identity
        for member in r.smembers("processes"):
            ident = member.decode()
            parts = ident.rsplit(":", 2)
            if len(parts) == 3 and parts[1] == str(self.pid) and r.hexists(ident, "info"):
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
        """SIGKILL this process (not its children) and reap it; returns the time
        (monotonic) of the kill."""
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

    def stop(self, timeout: float = 30.0) -> int:
        """TERM, then its exit code (a clean exit leaves ``processes``)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.send(signal.SIGTERM)
        return self.wait_exit(timeout)

    def close(self) -> None:
        """Kill its process group if it still runs (``-P`` workers, the liveness pulse,
        anything a job forked), then close its log."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(10)
        self._log.close()

    # --- output --------------------------------------------------------------
    def output(self) -> str:
        if not self._log.closed:  # closed at teardown; a teardown failure reads it after
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


class Harness:
    """Child processes of one test on one Redis: ``roadie run`` processes loading
    ``jobs`` (``spawn``) and any other command (``start``). Their environment is
    ``base_env(url)``, ``FAST_ENV``, then ``env``; ``close()`` kills all of them."""

    def __init__(self, url: str, workdir: Path, env: Mapping[str, str] | None = None,
                 *, jobs: Path | None = None) -> None:
        self.url = url
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.jobs = jobs
        self.env = {**base_env(url), **FAST_ENV, **(env or {})}
        self.procs: list[Proc] = []

    def start(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: Path | None = None, kind: str = "proc") -> Proc:
        """Start ``argv`` (in the harness's folder unless ``cwd``) with ``env`` on top of
        the harness's environment; its log is ``<kind><n>.log`` there."""
        name = f"{kind}{len(self.procs) + 1}"
        # The working folder is the test's own: no stray roadie.toml is picked up.
        proc = Proc(name, argv, {**self.env, **(env or {})},
                    self.workdir / f"{name}.log", cwd or self.workdir)
        self.procs.append(proc)
        return proc

    def spawn(self, *args: str, env: Mapping[str, str] | None = None,
              r: redis.Redis | None = None, timeout: float = 20.0) -> Proc:
        """Start ``roadie run -r <jobs> *args``; with ``r``, wait until registered."""
        assert self.jobs is not None, "a Harness for roadie run needs its jobs= module"
        proc = self.start([sys.executable, "-m", "roadie", "run", "-r", str(self.jobs), *args],
                          env=env, kind="p")
        if r is not None:
            proc.wait_registered(r, timeout)
        return proc

    def alive(self) -> list[Proc]:
        return [p for p in self.procs if p.alive]

    def close(self) -> None:
        for p in self.procs:
            p.close()

    def report(self, lines: int = 60) -> str:
        """The tail of every process's log, for a failed test's report."""
        out = []
        for p in self.procs:
            argv = " ".join("python" if a == sys.executable else a for a in p.argv)
            out.append(f"--- {p.name} pid={p.pid} rc={p.returncode} {argv}")
            out.append(p.tail(lines))
        return "\n".join(out)

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
