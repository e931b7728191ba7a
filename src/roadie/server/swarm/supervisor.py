"""``roadie run -P N``: one supervisor process forking N worker processes.

The supervisor has already imported the job modules (``-r``) when it forks, so the
workers share those pages copy-on-write. It holds no Redis connection and no thread
across a fork: after a preflight check of Redis (which also starts an ``embedded://``
server once) its client is closed, and each worker builds its own ``Launcher``, with
its own identity and heartbeat, after the fork.

Signals: TERM/INT stop every worker (each with its own ``timeout_s``) and the
supervisor exits 0 if all exited cleanly; TSTP and TTIN are passed on. A worker that
dies is replaced (with a backoff when it keeps dying soon after its start). With
``max_memory_mb`` a worker whose RSS grows over the limit is stopped with
``MEMORY_SIGNAL`` (SIGUSR2: a stop whose jobs still running at its timeout count a
crash, so a job too big for the limit ends in the dead set) and replaced when it has
exited. Workers stop by themselves if the supervisor is killed
(``PR_SET_PDEATHSIG`` on Linux, a watch on the parent pid elsewhere: the worker's
side is ``swarmworker.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import FrameType

import redis as redis_lib

from roadie.config import Config
from roadie.errors import ConfigError, RedisUnavailable
from roadie.redis.connection import MIN_REDIS_VERSION, connect, redact, resolve_url, server_version
from roadie.server.pulse.lite import MEMORY_SIGNAL
from roadie.server.swarm.startgate import StartGate
from roadie.server.swarm.worker import HANDLED, worker_main

log = logging.getLogger("roadie")

#: A worker that dies sooner than this after its start is "dying at once".
MIN_UPTIME_S = 10.0
#: Longest wait before restarting a worker that keeps dying at once.
MAX_BACKOFF_S = 30.0
#: Seconds between two looks at the workers' memory.
MEMORY_CHECK_S = 3.0
#: A stopping worker gets ``timeout_s`` plus this long before it is killed.
STOP_GRACE_S = 15.0


@dataclass
class Worker:
    """One slot of the swarm and the process currently filling it."""

    index: int
    pid: int = 0
    started_at: float = 0.0
    #: Quick deaths in a row (each sooner than ``MIN_UPTIME_S`` after its start).
    streak: int = 0
    #: When to fork a replacement (monotonic), 0 if none is due.
    restart_at: float = 0.0
    #: The pid this slot's next process replaces, for the log.
    replaces: int = 0
    #: Sent TERM for using too much memory: replaced once it has exited.
    over_memory: bool = False


def describe(status: int) -> str:
    """``"exited with code 1"`` or ``"was killed by SIGKILL"`` for a wait status."""
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"was killed by {name}"


def rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` in MB (MiB) from ``/proc/<pid>/status``; None if unknown."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def backoff_s(streak: int) -> float:
    """Wait before restarting a worker after ``streak`` quick deaths in a row."""
    if streak <= 1:
        return 0.0
    return float(min(MAX_BACKOFF_S, 2.0 ** (streak - 2)))


def check_redis(config: Config) -> None:
    """Fail before forking, in one line, if Redis is missing or too old.

    Starts an ``embedded://`` server once, here, rather than in every worker. The
    client is closed afterwards: no connection crosses the fork.
    """
    url = redact(resolve_url(config.redis_url))
    client = connect(config)
    try:
        info = client.info("server")
    except redis_lib.AuthenticationError as exc:
        raise RedisUnavailable(f"Redis at {url} refused our credentials: {exc}") from None
    except (redis_lib.RedisError, OSError) as exc:
        raise RedisUnavailable(
            f"cannot reach Redis at {url} ({exc}). Start Redis, set REDIS_URL "
            "(or --redis-url), or use embedded://.roadie/redis for development."
        ) from None
    finally:
        client.close()
        client.connection_pool.disconnect()
    if server_version(info) < MIN_REDIS_VERSION:
        have = ".".join(map(str, server_version(info)))
        need = ".".join(map(str, MIN_REDIS_VERSION))
        raise RedisUnavailable(f"Redis at {url} is version {have}; roadie needs {need} or newer")


class Swarm:
    """Runs ``config.processes`` workers; ``run()`` returns the exit code."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.count = config.processes
        self.max_memory_mb = config.max_memory_mb
        self.workers = [Worker(i) for i in range(self.count)]
        self.pid = os.getpid()
        self.signals: deque[int] = deque()
        self.quiet = False
        self.stopping = False
        self.stop_deadline = 0.0
        self.failed = False
        self.next_memory_check = 0.0
        self._wakeup: tuple[int, int] | None = None
        #: While the initial workers are forked: they start their jobs together.
        self._gate: StartGate | None = None

    # --- the supervisor's loop ---------------------------------------------------
    def run(self) -> int:
        if self.max_memory_mb and rss_mb(self.pid) is None:
            raise ConfigError(
                "max_memory_mb (--max-memory) reads each worker's memory from "
                "/proc/<pid>/status, which this system does not have (Linux only); "
                "remove the setting"
            )
        own = rss_mb(self.pid) or 0.0
        if self.max_memory_mb and self.max_memory_mb <= own:
            raise ConfigError(
                f"max_memory_mb (--max-memory) is {self.max_memory_mb} MB, but a worker "
                f"starts with {own:.0f} MB already (the app loaded before forking); "
                "set a higher limit"
            )
        check_redis(self.config)
        if threading.active_count() > 1:
            names = ", ".join(t.name for t in threading.enumerate()
                              if t is not threading.current_thread())
            log.warning("threads started while loading your modules (%s) do not exist in "
                        "the worker processes", names)
        self._install_signals()
        try:
            limit = f", memory limit {self.max_memory_mb} MB each" if self.max_memory_mb else ""
            log.info("supervisor pid %d: starting %d worker processes%s",
                     self.pid, self.count, limit)
            self._gate = StartGate() if self.count > 1 else None
            try:
                for w in self.workers:
                    self._spawn(w)
            finally:
                gate, self._gate = self._gate, None
                if gate is not None:
                    assert self._wakeup is not None
                    gate.release(sum(1 for w in self.workers if w.pid), self._wakeup[0])
            self.next_memory_check = time.monotonic() + MEMORY_CHECK_S
            while True:
                self._wait(self._timeout())
                while self.signals:
                    self._on_signal(self.signals.popleft())
                self._reap()
                if self.stopping and not any(w.pid for w in self.workers):
                    break
                now = time.monotonic()
                if self.stopping and now >= self.stop_deadline:
                    self._kill_stragglers()
                    continue
                for w in self.workers:
                    if self._due(w) and now >= w.restart_at:
                        self._spawn(w)
                if self.max_memory_mb and not self.stopping and now >= self.next_memory_check:
                    self.next_memory_check = now + MEMORY_CHECK_S
                    self._check_memory()
        finally:
            self._uninstall_signals()
        if self.failed:
            log.error("supervisor: stopped; some workers did not exit cleanly (see above)")
            return 1
        log.info("supervisor: all workers stopped; bye")
        return 0

    def _timeout(self) -> float:
        now = time.monotonic()
        due = [now + 1.0]
        if self.stopping:
            due.append(self.stop_deadline)
        else:
            due += [w.restart_at for w in self.workers if self._due(w)]
            if self.max_memory_mb:
                due.append(self.next_memory_check)
        return max(0.0, min(due) - now)

    def _due(self, w: Worker) -> bool:
        """A replacement is waiting for its time (none is started once quiet or stopping)."""
        return not (self.stopping or self.quiet) and w.pid == 0 and w.restart_at > 0

    def _wait(self, timeout: float) -> None:
        """Sleep until a signal arrives (through the wakeup pipe) or ``timeout`` passes."""
        assert self._wakeup is not None
        rfd = self._wakeup[0]
        if not self.signals:
            with contextlib.suppress(InterruptedError):
                select.select([rfd], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(rfd, 512):
                pass

    # --- signals -------------------------------------------------------------------
    def _install_signals(self) -> None:
        rfd, wfd = os.pipe()
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        self._wakeup = (rfd, wfd)
        signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)

        # Only records the signal: the loop acts on it (no logging in a handler).
        def record(signum: int, _frame: FrameType | None) -> None:
            self.signals.append(signum)

        for sig in HANDLED:
            signal.signal(sig, record)

    def _uninstall_signals(self) -> None:
        signal.set_wakeup_fd(-1)
        for sig in HANDLED:
            signal.signal(sig, signal.SIG_DFL)
        if self._wakeup is not None:
            for fd in self._wakeup:
                os.close(fd)
            self._wakeup = None

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            return  # the loop reaps after every wakeup
        name = signal.Signals(signum).name.removeprefix("SIG")
        if signum in (signal.SIGTERM, signal.SIGINT):
            if not self.stopping:
                self.stopping = True
                self.stop_deadline = time.monotonic() + self.config.timeout_s + STOP_GRACE_S
                log.info("supervisor: %s received; stopping %d worker(s): %s", name,
                         self._live(), self._pids())
            self._forward(signum)
        elif signum == signal.SIGTSTP:
            if not self.quiet:
                log.info("supervisor: TSTP received; quieting workers %s (a worker that dies "
                         "from now on is not replaced)", self._pids())
            self.quiet = True
            self._forward(signum)
        elif signum == signal.SIGTTIN:
            now = time.monotonic()
            for w in self.workers:
                if w.pid:
                    rss = rss_mb(w.pid)
                    log.warning("supervisor: worker %d pid %d, up %.0f s, rss %s", w.index,
                                w.pid, now - w.started_at,
                                "?" if rss is None else f"{rss:.0f} MB")
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        for w in self.workers:
            if w.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signum)

    def _live(self) -> int:
        return sum(1 for w in self.workers if w.pid)

    def _pids(self) -> str:
        return ", ".join(str(w.pid) for w in self.workers if w.pid) or "none"

    # --- workers ---------------------------------------------------------------------
    def _spawn(self, w: Worker) -> None:
        # Buffered output would be written twice: once by each process.
        sys.stdout.flush()
        sys.stderr.flush()
        blocked = set(HANDLED)
        signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            pid = os.fork()
            if pid == 0:
                worker_main(self.config, w.index, self.pid, self._gate, self._wakeup)
        except OSError as exc:  # out of processes or memory: try again later
            log.error("supervisor: could not fork worker %d (%s); trying again in %.0f s",
                      w.index, exc, MAX_BACKOFF_S)
            w.restart_at = time.monotonic() + MAX_BACKOFF_S
            return
        finally:
            # In the supervisor only: the worker unblocks once its own handlers are set.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
        if w.replaces:
            log.info("supervisor: worker %d: started pid %d in place of pid %d",
                     w.index, pid, w.replaces)
        else:
            log.info("supervisor: worker %d: started pid %d", w.index, pid)
        w.pid, w.started_at = pid, time.monotonic()
        w.restart_at, w.replaces, w.over_memory = 0.0, 0, False

    def _reap(self) -> None:
        for w in self.workers:
            if not w.pid:
                continue
            try:
                pid, status = os.waitpid(w.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = w.pid, 0
            if pid == 0:
                continue
            self._exited(w, status)

    def _exited(self, w: Worker, status: int) -> None:
        now = time.monotonic()
        lived = now - w.started_at
        how = describe(status)
        dead, w.pid = w.pid, 0
        clean = os.waitstatus_to_exitcode(status) == 0
        if self.stopping:
            if clean:
                log.info("supervisor: worker %d (pid %d) stopped", w.index, dead)
            else:
                self.failed = True
                log.error("supervisor: worker %d (pid %d) %s while stopping", w.index, dead, how)
            return
        if self.quiet:
            log.warning("supervisor: worker %d (pid %d) %s after %.1f s; not replaced while "
                        "quiet", w.index, dead, how, lived)
            return
        why = ""
        if w.over_memory:
            why = " (stopped for its memory use)"
        elif clean:
            why = " (stopped through Redis, e.g. a dashboard's Stop?)"
        w.streak = w.streak + 1 if lived < MIN_UPTIME_S and not w.over_memory else 0
        delay = backoff_s(w.streak)
        w.replaces = dead
        w.restart_at = now + delay
        if delay:
            log.error("supervisor: worker %d (pid %d) %s%s after %.1f s, the %d%s time in a "
                      "row within %.0f s of its start; restarting it in %.0f s", w.index, dead,
                      how, why, lived, w.streak, _ordinal(w.streak), MIN_UPTIME_S, delay)
            return
        level = logging.INFO if clean else logging.WARNING
        log.log(level, "supervisor: worker %d (pid %d) %s%s after %.1f s; replacing it",
                w.index, dead, how, why, lived)
        self._spawn(w)

    def _check_memory(self) -> None:
        for w in self.workers:
            if not w.pid or w.over_memory:
                continue
            rss = rss_mb(w.pid)
            if rss is not None and rss > self.max_memory_mb:
                w.over_memory = True
                log.warning("supervisor: worker %d (pid %d) uses %.0f MB, over the limit of "
                            "%d MB; stopping it (%s: a stop whose jobs still running at its "
                            "timeout count a crash), a new worker replaces it when it has "
                            "exited", w.index, w.pid, rss, self.max_memory_mb,
                            MEMORY_SIGNAL.name)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, MEMORY_SIGNAL)

    def _kill_stragglers(self) -> None:
        for w in self.workers:
            if w.pid:
                log.error("supervisor: worker %d (pid %d) still running %.0f s after TERM; "
                          "killing it (another process's janitor recovers its jobs)",
                          w.index, w.pid, self.config.timeout_s + STOP_GRACE_S)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGKILL)
        self.failed = True
        self.stop_deadline = time.monotonic() + 3600.0  # reap them; no second round


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
