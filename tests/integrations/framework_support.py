"""Shared by the framework-integration tests: where the examples are, a clean
environment for subprocesses, and a child process with its output in a log file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

#: Short intervals so a scheduled job or a process registration takes a second at most.
FAST_ENV = {
    "ROADIE_HEARTBEAT_INTERVAL_S": "0.5",
    "ROADIE_POLL_INTERVAL_FIXED_S": "0.5",
}


def base_env(redis_url: str) -> dict[str, str]:
    """This environment without ROADIE_* settings that would leak into a subprocess."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ROADIE_") and k not in ("REDIS_PROVIDER",)}
    if "ROADIE_REDIS_SERVER" in os.environ:
        env["ROADIE_REDIS_SERVER"] = os.environ["ROADIE_REDIS_SERVER"]
    env["REDIS_URL"] = redis_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Subprocess:
    """A child process whose output goes to a log file; killed if still alive at the end."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path,
                 log_path: Path) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            self.argv, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._log.close()


PYTHON = sys.executable
