"""The liveness pulse: a child process per roadie process that keeps its liveness key
(``roadie:alive:<identity>``) fresh outside the GIL, sees the process die or overrun
its stop, and writes its death record (which jobs were running).

``Pulse`` starts and stops it; it runs ``lite.py`` (standard library only) for a plain
Redis, or ``pulse_main`` here (redis-py) for TLS and Sentinel URLs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import redis as redis_lib

from roadie.config import Config
from roadie.keys import DEATH_RECORD_TTL_S
from roadie.redis.connection import Redis, connect, resolve_url
from roadie.server.pulse.lite import Beat, Report, serve

if TYPE_CHECKING:  # the process shares its slots with the pulse; state imports lite
    from roadie.server.state import RunningSlots

log = logging.getLogger("roadie")


#: What the pulse child runs for a TLS or Sentinel URL (``python -c``); its settings
#: arrive on its stdin. It lowers its priority before its imports (redis-py: about
#: 0.15 s of CPU): it must not take CPU from the processors, and a beat every few
#: seconds needs next to none.
PULSE_COMMAND = ("import os; os.nice(10); "
                 "from roadie.server.pulse.child import pulse_main; pulse_main()")
#: The pulse for a plain Redis: the standard library only, isolated (``-I -S``).
LITE_PULSE = str(Path(__file__).with_name("lite.py"))


def lite_target(redis: Redis) -> dict[str, Any] | None:
    """How ``litepulse.py`` reaches the server of ``redis``: a TCP or Unix socket,
    credentials and db. None when it cannot (TLS, Sentinel, a credential provider):
    the redis-py pulse does it then."""
    pool = redis.connection_pool
    kwargs = pool.connection_kwargs
    if type(pool) not in (redis_lib.ConnectionPool, redis_lib.BlockingConnectionPool) or (
        kwargs.get("credential_provider") is not None
    ):
        return None
    target: dict[str, Any] = {
        "username": kwargs.get("username"), "password": kwargs.get("password"),
        "db": int(kwargs.get("db") or 0),
    }
    if pool.connection_class is redis_lib.UnixDomainSocketConnection:
        target["path"] = kwargs["path"]
    elif pool.connection_class is redis_lib.Connection:
        target["host"] = kwargs.get("host", "localhost")
        target["port"] = int(kwargs.get("port", 6379))
    else:
        return None
    return target


class Pulse:
    """A child process that keeps ``roadie:alive:<identity>`` fresh.

    The heartbeat is a thread: a job stuck in a C call that holds the GIL (a long
    ``sum(range(n))``, regex or NumPy call) starves it, the liveness key expires, and
    another process's janitor "recovers" the jobs of a process that is still running
    them: every one runs twice. The pulse does not share the GIL. Every
    ``heartbeat_interval_s`` it sets the key (TTL ``process_ttl_s``) while its parent
    lives, and exits as soon as the parent is gone: the parent holds the write end of
    the pulse's stdin, which the kernel closes when the parent dies, even with -9.
    So a killed process still looks dead after at most ``process_ttl_s``.

    Settings (with the Redis password) go through that pipe, never the command line.
    It ignores TERM/INT (a terminal's Ctrl-C or systemd signal the whole group): the
    parent's shutdown decides when it ends. The heartbeat thread still writes the key
    too, so liveness does not depend on the pulse alone.
    """

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen

    @classmethod
    def start(cls, redis: Redis, key: str, config: Config, *, record_key: str | None = None,
              running: RunningSlots | None = None, signal_fd: int | None = None,
              lite: bool = True) -> Pulse | None:
        """Start a pulse for ``key`` on ``redis``'s server; None (logged) if impossible.

        ``record_key``: where it writes the death record if the process dies,
        listing the jobs in ``running``; ``signal_fd``: the pipe the process's signal
        wakeup fd writes into. ``lite=False``: the redis-py pulse even for a plain
        Redis (tests).
        """
        try:
            target = lite_target(redis) if lite else None
            fds = [fd for fd in (signal_fd, running.fd if running else None) if fd is not None]
            settings: dict[str, Any] = {
                # The URL, so that the pulse connects as roadie does: TLS, ACL user,
                # Sentinel (it then follows a failover by itself). An embedded:// URL
                # becomes the running server's URL.
                "url": resolve_url(config.redis_url),
                "socket_timeout_s": config.socket_timeout_s,
                "connect_timeout_s": config.connect_timeout_s,
                "key": key,
                "ttl_ms": int(config.process_ttl_s * 1000),
                "interval_s": config.heartbeat_interval_s,
                "parent": os.getpid(),
                "record_key": record_key,
                "record_ttl_s": DEATH_RECORD_TTL_S,
                "running_fd": running.fd if running else None,
                "running_size": running.size if running else 0,
                "signal_fd": signal_fd,
                "stop_timeout_s": config.timeout_s,
                "max_memory_mb": config.max_memory_mb,
                **(target or {}),
            }
            argv = ([sys.executable, "-I", "-S", LITE_PULSE] if target is not None
                    else [sys.executable, "-c", PULSE_COMMAND])
            popen = subprocess.Popen(
                argv, stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, close_fds=True, pass_fds=fds,
            )
        except Exception as exc:
            log.warning("could not start the liveness pulse (%s): a job that holds the GIL "
                        "for longer than process_ttl_s can make this process look dead",
                        exc)
            return None
        assert popen.stdin is not None
        try:
            popen.stdin.write(orjson.dumps(settings) + b"\n")
            popen.stdin.flush()
        except OSError as exc:
            log.warning("the liveness pulse did not start (%s)", exc)
            popen.kill()
            popen.wait()
            return None
        return cls(popen)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def _send(self, message: dict[str, Any]) -> None:
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.popen.stdin.write(orjson.dumps(message) + b"\n")
                self.popen.stdin.flush()

    def stopping(self, deadline_in_s: float) -> None:
        """The process's stop began: kill it if it still runs ``deadline_in_s`` from
        now (a job holding the GIL keeps it from exiting by itself)."""
        self._send({"stopping_s": deadline_in_s})

    def stop(self, timeout: float = 5.0) -> None:
        """A clean stop: tell it so (it writes no death record), close its pipe (it
        exits at once) and reap it."""
        self._send({"stop": "clean"})
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def pulse_main() -> None:
    """The redis-py pulse child (see ``Pulse``). Exits 0 when its parent is gone."""

    def start(settings: dict[str, Any]) -> tuple[Beat, Report]:
        config = Config(redis_url=settings["url"], redis_url_configured=True,
                        socket_timeout_s=settings["socket_timeout_s"],
                        connect_timeout_s=settings["connect_timeout_s"])
        client = connect(config)
        key, ttl_ms = settings["key"], settings["ttl_ms"]

        def beat() -> None:
            # PEXPIRE first: a full Redis (noeviction) refuses SET, not PEXPIRE.
            with contextlib.suppress(Exception):
                if not client.pexpire(key, ttl_ms):
                    client.set(key, b"1", px=ttl_ms)

        def report(record: str) -> None:
            if settings.get("record_key"):
                with contextlib.suppress(Exception):
                    client.set(settings["record_key"], record, ex=settings["record_ttl_s"])
            with contextlib.suppress(Exception):
                client.delete(key)

        return beat, report

    serve(start)
