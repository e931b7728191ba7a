"""A real redis-server that roadie starts and manages itself.

* ``EmbeddedRedis`` is the shared development server behind ``embedded://<dir>`` URLs:
  daemonized, reachable only through ``<dir>/redis.sock``, persistent (AOF), and shared
  by every process pointed at the same folder.
* ``RedisServer`` (``redisserver.py``, importable from here too) is a private,
  throwaway TCP server for tests and benchmarks.

Which binary runs, and the helpers both use, are in ``redisbin.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import redis

from roadie.errors import ConfigError, RedisUnavailable, RoadieError
from roadie.redisbin import (
    ENV_BINARY,
    find_redis_server,
    free_port,
    log_tail,
    poll_until,
    quick_client,
    server_pid,
)
from roadie.redisserver import RedisServer

# RedisServer and the binary lookup are importable from here too, as they always were.
__all__ = ["DEFAULT_EMBEDDED_DIR", "ENV_BINARY", "EmbeddedRedis", "RedisServer",
           "find_redis_server", "free_port"]

DEFAULT_EMBEDDED_DIR = ".roadie/redis"
#: sun_path is 108 bytes on Linux and 104 on macOS; stay clear of both.
MAX_SOCKET_PATH = 100


class EmbeddedRedis:
    """The shared development server whose data lives in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        # abspath, not resolve(): symlinks stay as written, so the socket path does not
        # grow behind the user's back (e.g. /tmp -> /private/tmp on macOS).
        self.directory = Path(os.path.abspath(os.path.expanduser(directory)))
        self.socket_path = self.directory / "redis.sock"
        size = len(os.fsencode(self.socket_path))
        if size > MAX_SOCKET_PATH:
            raise ConfigError(
                f"embedded Redis folder {str(self.directory)!r} is too deep: its unix socket "
                f"path would be {size} bytes, over the {MAX_SOCKET_PATH}-byte limit of unix "
                "sockets; use a shorter folder (e.g. embedded://.roadie/redis in your project)"
            )
        self.pidfile = self.directory / "redis.pid"
        self.logfile = self.directory / "redis.log"
        self._lockfile = self.directory / "redis.lock"
        # The server inherits an exclusive flock on this file and holds it until it dies:
        # "is a server alive here?" then has an answer no stale pidfile or reused pid fools.
        self._alivefile = self.directory / "redis.alive"

    @classmethod
    def from_url(cls, url: str) -> EmbeddedRedis:
        """``embedded://.roadie``, ``embedded:///abs/dir``; empty means ``.roadie/redis``."""
        if not url.startswith("embedded:"):
            raise ConfigError(f"not an embedded:// URL: {url!r}")
        path = url[len("embedded:"):].removeprefix("//")
        return cls(path or DEFAULT_EMBEDDED_DIR)

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def running(self) -> bool:
        """True if a server answers on this folder's socket."""
        return server_pid(unix_socket_path=str(self.socket_path)) is not None

    @property
    def pid(self) -> int | None:
        """The server's pid while its process exists (answering or not), else None."""
        if not self._process_alive():
            return None
        with contextlib.suppress(OSError, ValueError):
            return int(self.pidfile.read_text().strip())
        return server_pid(unix_socket_path=str(self.socket_path))

    def start(self, timeout: float = 30.0) -> str:
        """Start the server unless one already runs for this folder; return its URL."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            if self.running:
                return self.url
            if self._process_alive():
                # Alive but silent: most likely still loading a large AOF.
                if poll_until(lambda: self.running, timeout):
                    return self.url
                raise RedisUnavailable(
                    f"embedded Redis in {self.directory} (pid {self.pid}) is running but does "
                    f"not answer; last lines of {self.logfile}:\n{log_tail(self.logfile)}"
                )
            self._launch(timeout)
            return self.url

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the server down (AOF flushed) and wait until its process is gone."""
        if not self.directory.is_dir():
            return
        with self._locked():
            pid = self.pid
            if pid is None:
                return
            client = quick_client(unix_socket_path=str(self.socket_path))
            try:
                if self.running:
                    client.shutdown()  # drops our connection: redis-py counts that as success
                else:
                    os.kill(pid, signal.SIGTERM)
            except redis.RedisError:
                os.kill(pid, signal.SIGTERM)
            finally:
                client.close()
            if poll_until(lambda: not self._process_alive(), timeout):
                return
            # SHUTDOWN reached nobody (socket file deleted?) or was ignored: use a signal.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not poll_until(lambda: not self._process_alive(), 5.0):
                raise RedisUnavailable(
                    f"embedded Redis in {self.directory} (pid {pid}) did not exit; "
                    f"see {self.logfile}"
                )

    def _process_alive(self) -> bool:
        try:
            with self._alivefile.open("rb") as f:
                # Shared, so concurrent checkers never mistake each other for the server.
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except FileNotFoundError:
            return False
        return False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Serialises start/stop across processes: two apps booting at once must not
        # both launch a server on the same AOF.
        with self._lockfile.open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def _launch(self, timeout: float) -> None:
        binary = find_redis_server()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # left by a crash; nothing listens on it
        args = [
            binary, "--daemonize", "yes", "--port", "0",
            "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
            "--dir", str(self.directory), "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--maxmemory-policy", "noeviction",
        ]
        log_start = self.logfile.stat().st_size if self.logfile.exists() else 0
        with self._alivefile.open("a") as alive:
            fcntl.flock(alive, fcntl.LOCK_EX)
            try:
                proc = subprocess.run(
                    args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, pass_fds=(alive.fileno(),), cwd=self.directory,
                    start_new_session=True, timeout=timeout, check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise RedisUnavailable(f"could not run {binary}: {exc}") from None
        # Our copy of the alive lock is closed now; only the daemon holds it.
        if proc.returncode != 0:
            output = proc.stdout.decode(errors="replace").strip() or "(no output)"
            raise RedisUnavailable(
                f"{binary} failed to start (exit code {proc.returncode}): {output}\n"
                f"{log_tail(self.logfile, log_start)}"
            )
        poll_until(lambda: self.running or not self._process_alive(), timeout)
        if not self.running:
            raise RedisUnavailable(
                f"embedded Redis in {self.directory} did not start; last lines of "
                f"{self.logfile}:\n{log_tail(self.logfile, log_start)}"
            )


def _embedded_for(directory: str) -> EmbeddedRedis:
    if directory.startswith("embedded:"):
        return EmbeddedRedis.from_url(directory)
    return EmbeddedRedis(directory)


def cmd_start(directory: str) -> int:
    """``roadie embedded start``: start (or find) the embedded server for ``directory``."""
    try:
        server = _embedded_for(directory)
        url = server.start()
    except RoadieError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"embedded redis running at {url} (pid {server.pid}), data in {server.directory}")
    return 0


def cmd_stop(directory: str) -> int:
    """``roadie embedded stop``: shut the embedded server down; fine if it was not running."""
    try:
        server = _embedded_for(directory)
        pid = server.pid
        if pid is not None:
            server.stop()
    except RoadieError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state = "is not running" if pid is None else f"stopped (was pid {pid})"
    print(f"embedded redis in {server.directory} {state}")
    return 0


def cmd_status(directory: str) -> int:
    """``roadie embedded status``: 0 if the embedded server answers, else 1."""
    try:
        server = _embedded_for(directory)
    except RoadieError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if server.running:
        print(f"embedded redis running at {server.url} (pid {server.pid})")
        return 0
    pid = server.pid
    if pid is None:
        print(f"embedded redis in {server.directory} is not running")
    else:
        print(f"embedded redis in {server.directory} (pid {pid}) does not answer; "
              f"see {server.logfile}")
    return 1
