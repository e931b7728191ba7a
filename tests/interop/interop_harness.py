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

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import redis
from support.procs import Harness, Proc, base_env
from support.wait import wait_until

HERE = Path(__file__).resolve().parent
RUBY_DIR = HERE / "ruby"
PYJOBS = HERE / "interop_pyjobs.py"
FIXTURES = HERE / "fixtures"

#: Queues: Python jobs live on interop_py, Ruby jobs on interop_rb (one queue per language).
PY_QUEUE = "interop_py"
RB_QUEUE = "interop_rb"

#: Short intervals for roadie processes, so that the tests take seconds.
INTEROP_ENV = {
    "ROADIE_HEARTBEAT_INTERVAL_S": "0.5",
    "ROADIE_POLL_INTERVAL_FIXED_S": "0.3",
    "ROADIE_PROCESS_TTL_S": "3",
    "ROADIE_JANITOR_INTERVAL_S": "1",
}
#: How long a Sidekiq or roadie process may take to register (Ruby starts slowly).
REGISTER_S = 30.0


def require_sidekiq() -> None:
    """Skip the calling test module unless ``ruby`` and ``sidekiq`` are installed."""
    missing = [name for name in ("ruby", "sidekiq") if shutil.which(name) is None]
    if missing:
        pytest.skip(
            f"interop tests need real Sidekiq: {' and '.join(missing)} not on PATH "
            "(apt-get install ruby-sidekiq; CI installs it in .ci/run)",
            allow_module_level=True,
        )


def ruby_ops(script: str, ops: list[Any], url: str, timeout: float = 60.0) -> list[Any]:
    """Run ``ruby <script>`` on ``ops``; returns one result per operation."""
    try:
        done = subprocess.run(
            ["ruby", str(RUBY_DIR / script)], input=json.dumps(ops).encode(),
            capture_output=True, env=base_env(url), cwd=RUBY_DIR, timeout=timeout,
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


class Fleet(Harness):
    """The Sidekiq and roadie processes of one test; ``close()`` kills all of them."""

    def __init__(self, url: str, workdir: Path) -> None:
        super().__init__(url, workdir, INTEROP_ENV, jobs=PYJOBS)

    def sidekiq(self, *queues: str, concurrency: int = 5, r: redis.Redis | None = None,
                env: Mapping[str, str] | None = None, args: tuple[str, ...] = ()) -> Proc:
        """``sidekiq -r ./jobs.rb -q <queue>... -c N`` (registered when ``r`` is given)."""
        argv = ["sidekiq", "-r", "./jobs.rb", "-c", str(concurrency), "-t", "5", *args]
        for q in queues or (RB_QUEUE,):
            argv += ["-q", q]
        proc = self.start(argv, env=env, cwd=RUBY_DIR, kind="sidekiq")
        if r is not None:
            proc.wait_registered(r, REGISTER_S)
        return proc

    def roadie(self, *queues: str, concurrency: int = 10, r: redis.Redis | None = None,
               env: Mapping[str, str] | None = None, args: tuple[str, ...] = ()) -> Proc:
        """``roadie run -r interop_pyjobs.py -q <queue>... -c N``."""
        queue_args = [arg for q in queues or (PY_QUEUE,) for arg in ("-q", q)]
        return self.spawn("-c", str(concurrency), *args, *queue_args, env=env, r=r,
                          timeout=REGISTER_S)


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

