"""The launcher owns one roadie process: processors, heartbeat, poller, janitor.

Lifecycle: ``start()``; ``quiet()`` (TSTP: fetch nothing more); ``stop()``
(TERM/INT: quiet, wait up to ``timeout_s`` for running jobs, push the rest back
to the front of their queues, leave the process registry).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from functools import partial
from types import FrameType

import redis as redis_lib

from roadie.check import preflight, refuse_missing_permissions
from roadie.config import Config
from roadie.errors import RedisUnavailable
from roadie.keys import DEATH_RECORD_TTL_S, Keys
from roadie.middleware import Hooks
from roadie.middleware import hooks as default_hooks
from roadie.redis.connection import (
    MIN_REDIS_VERSION,
    Redis,
    connect,
    connect_async,
    redact,
    resolve_url,
    server_version,
)
from roadie.redis.dedicated import DedicatedRedis
from roadie.registry import Registry, default_registry
from roadie.schedule import Schedules, default_schedules
from roadie.server.asyncloop import LoopThread
from roadie.server.fetch import Fetcher, UnitOfWork
from roadie.server.heartbeat import Heartbeat, rss_kb
from roadie.server.janitor import Janitor
from roadie.server.manager import Manager
from roadie.server.outage import TRANSIENT, Outage
from roadie.server.periodic import PeriodicScheduler
from roadie.server.poller import Poller
from roadie.server.processor import Processor
from roadie.server.pulse.lite import KILL_GRACE_S, MEMORY_SIGNAL, SECOND_STOP_AFTER_S
from roadie.server.state import State
from roadie.server.stopping import SignalPipe, describe_running, memory_death_record
from roadie.server.supply.deal import deal
from roadie.server.supply.loopfetch import LoopFetcher
from roadie.server.supply.parking import Parking

log = logging.getLogger("roadie")

#: While a stop waits for running jobs, how often it logs which ones.
WAITING_LOG_S = 5.0


class Launcher:
    def __init__(
        self,
        config: Config,
        *,
        hooks: Hooks | None = None,
        registry: Registry | None = None,
        redis: Redis | None = None,
        schedules: Schedules | None = None,
    ) -> None:
        self.config = config
        self.hooks = hooks or default_hooks
        self.registry = registry or default_registry
        self.keys = Keys(config.namespace)
        # One slot per processor, and room for replacements of crashed ones.
        self.state = State(slots=2 * config.concurrency + 8)
        self.url = redact(resolve_url(config.redis_url))
        self.outage = Outage(self.url)
        #: Whether processors lend their connections to their jobs' redis_client():
        #: only from a pool this launcher made, sized for it (a job's pipeline takes
        #: a second connection from the pool while its processor holds the first).
        self.lend = redis is None and config.speedup("lend_connection")
        self.redis = redis or connect(
            config,
            max_connections=2 * config.concurrency + 8,
            blocking=True,
        )
        self.fetcher = Fetcher(self.redis, config, self.keys, self.state.identity)
        self.parking = Parking(config.concurrency)
        self.background_stop = threading.Event()
        self._async: LoopThread | None = None
        self._loop_fetcher: LoopFetcher | None = None
        self._async_lock = threading.Lock()
        self.heartbeat = Heartbeat(
            self.redis, config, self.keys, self.state, self.outage,
            on_signal=self.remote_signal,
            on_first_beat=lambda: self.hooks.fire("heartbeat"),
        )
        self.poller = Poller(
            self.redis, config, self.keys, self.hooks, self.outage, self.background_stop
        )
        # Schedules from the code (roadie.periodic) and from the config file.
        self.schedules = Schedules(
            [*(default_schedules if schedules is None else schedules), *config.periodic]
        )
        self.periodic = PeriodicScheduler(
            self.redis, config, self.keys, self.hooks, self.registry, self.outage,
            self.background_stop, self.schedules, identity=self.state.identity,
        )
        self.janitor = Janitor(
            self.redis, config, self.keys, self.state.identity, self.outage,
            self.background_stop, hooks=self.hooks, held=self._held,
        )
        self.manager = Manager(config.concurrency, self.state, self.fetcher,
                               self._processor, deal=self._deal)
        #: Called when this process is ready to fetch, before its first fetch: the
        #: workers of ``roadie run -P N`` wait there for each other (``startgate``).
        self.start_gate: Callable[[], None] | None = None
        self._os_signals: deque[str] = deque()
        self.quiet_requested = threading.Event()
        self.stop_requested = threading.Event()
        #: A second TERM/INT during the stop: push back what runs, exit at once.
        self.stop_now = threading.Event()
        self._stop_requested_at = 0.0
        #: Stopped by ``roadie run -P``'s supervisor for using more than
        #: ``max_memory_mb``: a job still running at the deadline counts a crash.
        self.memory_stop = False
        self._signal_pipe: SignalPipe | None = None
        self.hard_stopped = False
        self.requeued = 0

    @property
    def identity(self) -> str:
        return self.state.identity

    def _held(self) -> set[bytes]:
        return self.manager.held()

    def _loop_thread(self) -> LoopThread:
        if self._async is None:
            with self._async_lock:
                if self._async is None:
                    # With a Redis client of its own, the loop fetches for the
                    # processors running async jobs: no thread wakes up for it.
                    self._async = LoopThread(self.config.event_loop,
                                              connect=partial(connect_async, self.config))
        return self._async

    def _loop_fetch(self) -> LoopFetcher:
        """The fetcher on the event loop, shared by the processors (the loop itself
        starts when it is first needed)."""
        if self._loop_fetcher is None:
            self._loop_fetcher = LoopFetcher(self.fetcher, self._loop_thread, self.state,
                                             self.outage, self.config.concurrency)
        return self._loop_fetcher

    def _processor(self, index: int) -> Processor:
        # Its own connection, held for life: cheaper per command than the pool.
        client = DedicatedRedis(self.redis.connection_pool,
                                short_path=self.config.speedup("short_command_path"),
                                gil_send=self.config.speedup("gil_send"))
        fetcher = Fetcher(client, self.config, self.keys, self.state.identity)
        speedup = self.config.speedup
        return Processor(
            index, config=self.config, keys=self.keys, fetcher=fetcher,
            state=self.state, hooks=self.hooks, registry=self.registry,
            outage=self.outage, loop_thread=self._loop_thread,
            siblings=self.manager.supplies,
            gate=self.manager.started if speedup("start_together") else None,
            loop_fetch=self._loop_fetch() if speedup("loop_fetch") else None,
            parking=self.parking if speedup("park") else None,
            owns_connection=True, lends_connection=self.lend,
        )

    # --- lifecycle -------------------------------------------------------------
    def _deal(self, processors: list[Processor]) -> int:
        gate, self.start_gate = self.start_gate, None
        if gate is not None and self.config.speedup("start_together"):
            gate()
        if not self.config.speedup("deal"):
            return 0
        dealt = deal(self.fetcher, [p.supply for p in processors], self.state)
        for p in processors:
            p.start_on_loop()
        return dealt

    def check_redis(self) -> None:
        """Fail fast, with one clear line, when Redis is missing or too old."""
        try:
            info = self.redis.info("server")
        except redis_lib.AuthenticationError as exc:
            raise RedisUnavailable(f"Redis at {self.url} refused our credentials: {exc}") from None
        except redis_lib.exceptions.NoPermissionError:  # before TRANSIENT, which has it
            refuse_missing_permissions(self.redis, self.config, self.url)  # INFO among them
            raise
        except TRANSIENT as exc:
            raise RedisUnavailable(
                f"cannot reach Redis at {self.url} ({exc}). Start Redis, set REDIS_URL "
                "(or --redis-url), or use embedded://.roadie/redis for development."
            ) from None
        version = server_version(info)
        if version < MIN_REDIS_VERSION:
            need = ".".join(map(str, MIN_REDIS_VERSION))
            have = ".".join(map(str, version))
            raise RedisUnavailable(
                f"Redis at {self.url} is version {have}; roadie needs {need} or newer"
            )
        # Missing ACL permissions, too few maxclients, a socket timeout shorter than
        # a blocking fetch: refuse now, in one line, not with a processor's traceback.
        try:
            preflight(self.redis, self.config, self.url)
        except TRANSIENT as exc:
            raise RedisUnavailable(f"lost Redis at {self.url} while checking it ({exc})") from None

    def start(self) -> None:
        self.check_redis()
        if not self.config.redis_url_configured:
            log.warning(
                "no Redis URL configured (REDIS_URL, ROADIE_REDIS_URL, --redis-url or "
                "roadie.toml); using the default %s", self.url,
            )
        if self.registry.names() == []:
            log.warning("no job classes are registered: load your jobs' modules with -r")
        self._warn_unserved_queues()
        self.hooks.fire("startup")
        try:
            self.heartbeat.register()
        except (*TRANSIENT, redis_lib.ResponseError) as exc:
            raise RedisUnavailable(f"cannot register this process in {self.url}: {exc}") from None
        if not self.heartbeat.beat() and not self.outage.full:
            # A full Redis refuses heartbeats, yet this process can help drain it (its
            # fetches, acknowledgements and outcomes get through): it starts.
            raise RedisUnavailable(f"cannot write the first heartbeat to {self.url}")
        if self.registry.has_async:
            # Connect the loop's client now: made on the first fetch, it stalled
            # every async job for a few ms.
            self._loop_thread().warm()
        # The background threads start first: their first steps do not run while
        # the first jobs do.
        self.heartbeat.start()
        self.poller.start()
        self.periodic.start()
        self.janitor.start()
        self.manager.start()
        log.info(
            "roadie %s started: %d processors, queues %s, Redis %s",
            self.identity, self.config.concurrency,
            ", ".join(f"{q},{w}" if w else q for q, w in self.config.queues), self.url,
        )

    def _warn_unserved_queues(self) -> None:
        """One warning when loaded job classes push to queues this process does not
        fetch from: their jobs would wait there until some process serves them."""
        served = set(self.config.queue_names)
        unserved: dict[str, list[str]] = {}
        for name in self.registry.names():
            job_cls = self.registry.find(name)
            queue = str((job_cls.options if job_cls else {}).get("queue") or "default")
            if queue not in served:
                unserved.setdefault(queue, []).append(name)
        if unserved:
            listed = "; ".join(f"{q} ({', '.join(names)})" for q, names in sorted(unserved.items()))
            log.warning(
                "job classes loaded here use queues this process does not listen to: %s. "
                "Their jobs wait there until a process serves them: add %s, or run "
                "another process for those queues",
                listed, " ".join(f"-q {q}" for q in sorted(unserved)),
            )

    def quiet(self) -> None:
        if self.state.quiet.is_set():
            return
        log.info("quieting: no new jobs will be fetched")
        self.state.quiet.set()
        self.parking.wake_all()
        self.background_stop.set()
        self.hooks.fire("quiet")

    def stop(self) -> None:
        """Quiet, wait up to ``timeout_s``, push back what is still running."""
        log.info("shutting down (timeout %.1f s)", self.config.timeout_s)
        self.state.stopping.set()
        pulse = self.heartbeat.pulse
        if pulse is not None:
            # If a job holding the GIL keeps this process from leaving, the pulse
            # kills it then (its jobs are recovered as after a kill).
            pulse.stopping(self.config.timeout_s + KILL_GRACE_S)
        self.quiet()
        deadline = time.monotonic() + self.config.timeout_s
        finished = self._wait_for_jobs(deadline)
        if not finished:
            self.hard_stopped = True
            try:
                stop = self.manager.hard_stop(
                    self._leave_for_the_janitor if self.memory_stop else None)
                if not self.memory_stop:
                    self.requeued = stop.requeued
                    for _ in range(self.requeued):
                        self.state.count(failed=True)
                    log.warning(
                        "%d job(s) still running after %.1f s; pushed back to the front "
                        "of their queues", self.requeued,
                        time.monotonic() - deadline + self.config.timeout_s,
                    )
            except TRANSIENT as exc:
                log.error("could not push back the running job(s) (%s); the janitor of "
                          "another process will recover them", exc)
        self.heartbeat.stop()
        self.heartbeat.clear()
        self._close_signal_pipe()
        self.hooks.fire("shutdown")
        if self._async is not None:
            self._async.stop()
        log.info("bye")

    def _wait_for_jobs(self, deadline: float) -> bool:
        """Wait until every processor has ended, the deadline, or a second TERM/INT
        (then at once); log which jobs the stop waits for. True if all ended."""
        next_log = time.monotonic() + 0.1
        while True:
            if self.manager.join(min(deadline, time.monotonic() + 0.1)):
                return True
            while self._os_signals:
                self.handle_signal(self._os_signals.popleft())
            if self.stop_now.is_set():
                log.warning("second stop signal: not waiting for the running jobs")
                return False
            now = time.monotonic()
            if now >= deadline:
                return False
            if now >= next_log:
                next_log = now + WAITING_LOG_S
                self._log_waiting(deadline - now)

    def _log_waiting(self, left_s: float) -> None:
        raws = self.state.running_raws()
        if raws:
            log.info("stop: waiting up to %.1f s for %s (TERM or Ctrl-C again to push "
                     "them back and exit now)", left_s, describe_running(raws))

    def _leave_for_the_janitor(self, uows: list[UnitOfWork]) -> None:
        """A stop for memory use whose jobs did not finish: leave them in flight with
        a death record naming them, so that the next janitor recovers them counting a
        crash. Pushed back, a job too big for ``max_memory_mb`` would come straight
        back to the new worker, for ever."""
        rss_mb = rss_kb() / 1024.0
        record = memory_death_record([u.raw for u in uows], rss_mb,
                                     self.config.max_memory_mb, self.config.timeout_s)
        self.redis.set(self.keys.died(self.identity), record, ex=DEATH_RECORD_TTL_S)
        for _ in uows:
            self.state.count(failed=True)
        log.warning("%d job(s) still running after %.1f s of a stop for memory use "
                    "(%.0f MB, limit %d MB); left for the janitor, which counts a crash "
                    "for each", len(uows), self.config.timeout_s, rss_mb,
                    self.config.max_memory_mb)

    # --- signals -------------------------------------------------------------
    def remote_signal(self, name: str) -> None:
        """A signal sent through Redis (a dashboard's Quiet/Stop)."""
        log.info("received %s from Redis", name)
        self.handle_signal(name)

    def handle_signal(self, name: str) -> None:
        if name == "TSTP":
            self.quiet_requested.set()
        elif name in ("TERM", "INT"):
            now = time.monotonic()
            if not self.stop_requested.is_set():
                self._stop_requested_at = now
            elif now - self._stop_requested_at >= SECOND_STOP_AFTER_S:
                self.stop_now.set()
            self.stop_requested.set()
        elif name == MEMORY_SIGNAL.name.removeprefix("SIG"):
            log.warning("stopping: the supervisor found this worker over max_memory_mb "
                        "(%d MB)", self.config.max_memory_mb)
            self.memory_stop = True
            if not self.stop_requested.is_set():
                self._stop_requested_at = time.monotonic()
            self.stop_requested.set()
        elif name == "TTIN":
            self.dump_threads()
        else:
            log.warning("ignoring unknown signal %r", name)

    def dump_threads(self) -> None:
        frames = sys._current_frames()
        for thread in threading.enumerate():
            frame = frames.get(thread.ident or -1)
            stack = "".join(traceback.format_stack(frame)) if frame else "(no frame)\n"
            log.warning("thread %s\n%s", thread.name, stack)

    def install_signal_handlers(self, *, memory_signal: bool = False) -> None:
        """TERM/INT stop, TSTP quiets, TTIN dumps the threads; with ``memory_signal``
        (a worker of ``roadie run -P``), ``litepulse.MEMORY_SIGNAL`` is a stop for
        memory use. Main thread only; a second call does nothing."""
        if self._signal_pipe is not None:
            return

        # The handler only records the signal. Setting an Event here could deadlock:
        # the handler runs in the main thread, which may be inside Event.wait()
        # holding that Event's lock; logging from a handler has the same hazard.
        def on_os_signal(signum: int, _frame: FrameType | None) -> None:
            self._os_signals.append(signal.Signals(signum).name.removeprefix("SIG"))

        sigs = [signal.SIGTERM, signal.SIGINT, signal.SIGTSTP, signal.SIGTTIN]
        if memory_signal:
            sigs.append(MEMORY_SIGNAL)
        for sig in sigs:
            signal.signal(sig, on_os_signal)
        # The pulse sees the signals through it, even while a job holds the GIL.
        self._signal_pipe = SignalPipe()
        self.heartbeat.signal_fd = self._signal_pipe.read_fd

    def _close_signal_pipe(self) -> None:
        if self._signal_pipe is not None:
            self._signal_pipe.close()
            self._signal_pipe = None
            self.heartbeat.signal_fd = None

    def run(self) -> int:
        """Start, serve until TERM/INT, stop; returns the exit code (0)."""
        self.install_signal_handlers()
        self.start()
        while not self.stop_requested.is_set():
            time.sleep(0.1)
            self.manager.flush_acks()
            while self._os_signals:
                self.handle_signal(self._os_signals.popleft())
            if self.quiet_requested.is_set() and not self.state.quiet.is_set():
                self.quiet()
        self.stop()
        return 0
