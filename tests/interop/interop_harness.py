"""Real Sidekiq and real roadie processes on one Redis, for the interop tests.

* ``ruby_ops(script, ops, url)`` runs ``ruby tests/interop/ruby/<script>`` with a
  JSON list of operations on stdin and returns its JSON answer (``push.rb`` pushes
  like a Rails app, ``api.rb`` reads and steers through Sidekiq's API, ``web.rb``
  renders pages of Sidekiq's Web UI).
* ``Fleet`` starts ``sidekiq -r ./jobs.rb`` and ``roadie run -r interop_pyjobs.py``
  processes, each with its own log file and a bounded lifetime; ``close()`` kills
  whatever is still running.

Nothing here sleeps a fixed time: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import wait_until

HERE = Path(__file__).resolve().parent
RUBY_DIR = HERE / "ruby"
PYJOBS = HERE / "interop_pyjobs.py"
FIXTURES = HERE / "fixtures"

#: Queues: Python jobs live on interop_py, Ruby jobs on interop_rb (one queue per language).
PY_QUEUE = "interop_py"
RB_QUEUE = "interop_rb"

#: Short intervals for roadie processes, so that the tests take seconds.
ROADIE_FAST_ENV = {
    "ROADIE_HEARTBEAT_INTERVAL_S": "0.5",
    "ROADIE_POLL_INTERVAL_FIXED_S": "0.3",
    "ROADIE_PROCESS_TTL_S": "3",
    "ROADIE_JANITOR_INTERVAL_S": "1",
}


def require_sidekiq() -> None:
    """Skip the calling test module unless ``ruby`` and ``sidekiq`` are installed."""
    missing = [name for name in ("ruby", "sidekiq") if shutil.which(name) is None]
    if missing:
        pytest.skip(
            f"interop tests need real Sidekiq: {' and '.join(missing)} not on PATH "
            "(apt-get install ruby-sidekiq; CI installs it in .ci/run)",
            allow_module_level=True,
        )


def child_env(url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment for a child process: no stray ROADIE_* or REDIS_PROVIDER."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ROADIE_") and k != "REDIS_PROVIDER"}
    if "ROADIE_REDIS_SERVER" in os.environ:
        env["ROADIE_REDIS_SERVER"] = os.environ["ROADIE_REDIS_SERVER"]
    env["REDIS_URL"] = url
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def ruby_ops(script: str, ops: list[Any], url: str, timeout: float = 60.0) -> list[Any]:
    """Run ``ruby <script>`` on ``ops``; returns one result per operation."""
    try:
        done = subprocess.run(
            ["ruby", str(RUBY_DIR / script)], input=json.dumps(ops).encode(),
            capture_output=True, env=child_env(url), cwd=RUBY_DIR, timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"ruby {script} took over {timeout:g}s: {exc.stderr!r}") from None
    out = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0 or not out:
        raise AssertionError(
            f"ruby {script} failed (rc {done.returncode}) on {ops!r}:\n"
            f"{done.stderr.decode(errors='replace')[-3000:]}\n{out[-2000:]}"
        )
    result = json.loads(out.splitlines()[-1])
    assert isinstance(result, list) and len(result) == len(ops)
    return result


def sidekiq_api(url: str, *ops: dict[str, Any]) -> list[Any]:
    return ruby_ops("api.rb", list(ops), url)


def ruby_push(url: str, *ops: dict[str, Any]) -> list[Any]:
    return ruby_ops("push.rb", list(ops), url)


def sidekiq_web(url: str, *paths: str) -> list[dict[str, Any]]:
    """Pages of Sidekiq's own Web UI as {"status", "text"} (tags stripped)."""
    return ruby_ops("web.rb", list(paths), url)


class Proc:
    """One child process (sidekiq or roadie run) with its log file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path,
                 log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            argv, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.identity: str | None = None

    def __repr__(self) -> str:
        return f"<Proc {self.name} pid={self.pid} rc={self.popen.poll()}>"

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def find_identity(self, r: redis.Redis) -> str | None:
        if self.identity is None:
            for member in r.smembers("processes"):
                ident = member.decode()
                parts = ident.rsplit(":", 2)
                if len(parts) == 3 and parts[1] == str(self.pid) and r.hexists(ident, "info"):
                    self.identity = ident
        return self.identity

    def wait_registered(self, r: redis.Redis, timeout: float = 30.0) -> str:
        def check() -> str | None:
            if not self.alive:
                raise AssertionError(f"{self} exited before registering:\n{self.tail()}")
            return self.find_identity(r)

        return wait_until(check, timeout, 0.05, f"{self} did not register in processes")

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self} still running after {timeout:g}s:\n{self.tail()}") \
                from None

    def stop(self, timeout: float = 20.0) -> int:
        """TERM, then wait (a clean exit leaves ``processes``)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def close(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(10)
        self._log.close()

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


class Fleet:
    """The Sidekiq and roadie processes of one test; ``close()`` kills all of them."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []

    def _spawn(self, kind: str, argv: list[str], env: Mapping[str, str], cwd: Path) -> Proc:
        name = f"{kind}{len(self.procs) + 1}"
        proc = Proc(name, argv, env, cwd, self.workdir / f"{name}.log")
        self.procs.append(proc)
        return proc

    def sidekiq(self, *queues: str, concurrency: int = 5, r: redis.Redis | None = None,
                env: Mapping[str, str] | None = None, args: tuple[str, ...] = ()) -> Proc:
        """``sidekiq -r ./jobs.rb -q <queue>... -c N`` (registered when ``r`` is given)."""
        argv = ["sidekiq", "-r", "./jobs.rb", "-c", str(concurrency), "-t", "5", *args]
        for q in queues or (RB_QUEUE,):
            argv += ["-q", q]
        proc = self._spawn("sidekiq", argv, child_env(self.url, env), RUBY_DIR)
        if r is not None:
            proc.wait_registered(r)
        return proc

    def roadie(self, *queues: str, concurrency: int = 10, r: redis.Redis | None = None,
               env: Mapping[str, str] | None = None, args: tuple[str, ...] = ()) -> Proc:
        """``roadie run -r interop_pyjobs.py -q <queue>... -c N``."""
        argv = [sys.executable, "-m", "roadie", "run", "-r", str(PYJOBS),
                "-c", str(concurrency), *args]
        for q in queues or (PY_QUEUE,):
            argv += ["-q", q]
        proc = self._spawn("roadie", argv,
                           child_env(self.url, {**ROADIE_FAST_ENV, **(env or {})}), self.workdir)
        if r is not None:
            proc.wait_registered(r)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.close()

    def report(self, lines: int = 50) -> str:
        out = []
        for p in self.procs:
            out.append(f"--- {p.name} pid={p.pid} rc={p.popen.poll()} {' '.join(p.argv)}")
            out.append(p.tail(lines))
        return "\n".join(out)


def counts(r: redis.Redis, key: str) -> dict[str, int]:
    """A hash of run counters as {label: count}."""
    return {k.decode(): int(v) for k, v in r.hgetall(key).items()}


def wait_counts(r: redis.Redis, key: str, expected: int, timeout: float,
                what: str = "jobs") -> dict[str, int]:
    """Wait until the counters in ``key`` sum to ``expected``; returns them."""
    last: dict[str, dict[str, int]] = {}

    def done() -> bool:
        last["c"] = counts(r, key)
        total = sum(last["c"].values())
        if total > expected:
            raise AssertionError(f"{what}: {total} runs recorded, expected {expected}")
        return total == expected

    try:
        wait_until(done, timeout, 0.05, f"{what}: runs did not reach {expected}")
    except AssertionError as exc:
        got = last.get("c", {})
        raise AssertionError(f"{exc}; got {sum(got.values())} over {len(got)} labels") from None
    return last["c"]


def poll(predicate: Callable[[], Any], timeout: float, message: str) -> Any:
    return wait_until(predicate, timeout, 0.05, message)
