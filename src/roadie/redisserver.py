"""``RedisServer``: a private, throwaway TCP redis-server on 127.0.0.1 for tests and
benchmarks. It stays a child process (not daemonized), so it goes away with the run
that started it, and is killed at exit if the run forgot to stop it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import redis

from roadie.errors import RedisUnavailable
from roadie.redisbin import find_redis_server, free_port, log_tail, poll_until, quick_client

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
            client = quick_client(host="127.0.0.1", port=self._port, socket_timeout=0.5)
            try:
                return int(client.info("server")["process_id"]) == proc.pid
            except redis.AuthenticationError:
                # extra_args set a password: our own log has to vouch that we are up.
                return "Ready to accept connections" in log_tail(self.logfile, log_start)
            except (redis.RedisError, OSError, KeyError, ValueError):
                return False
            finally:
                client.close()

        if poll_until(lambda: proc.poll() is not None or ours(), timeout) and proc.poll() is None:
            return
        self.kill()
        tail = log_tail(self.logfile, log_start)
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
