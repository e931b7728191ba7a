"""Heartbeat: the process hash Sidekiq's tools read, stats, running jobs, signals.

Every ``heartbeat_interval_s`` (5 s, as Sidekiq 6) one MULTI writes the stats
counters, Sidekiq 7's execution metrics (``j|...`` and histograms), the work
hash (both ``<id>:work`` and Sidekiq 6.4's ``<id>:workers``), ``processes`` and
the ``<identity>`` hash (TTL 60 s), refreshes roadie's short liveness key, and
pops one signal sent by a dashboard (TSTP, TERM, TTIN).

The liveness key is also kept fresh by the **pulse**, a small child process (see
``Pulse``): a job stuck in C code that holds the GIL starves the heartbeat thread, and
must not make a live process look dead to the other processes' janitors.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from roadie.config import Config
from roadie.keys import METRICS_TTL_S, Keys
from roadie.redis.connection import Redis
from roadie.scripts import Scripts
from roadie.server.outage import TRANSIENT, Outage
from roadie.server.pulse.child import Pulse
from roadie.server.state import (
    METRIC_F,
    METRIC_HIST,
    METRIC_MS,
    METRIC_P,
    State,
)
from roadie.version import VERSION

log = logging.getLogger("roadie")

#: TTL of the Sidekiq process hash and work hashes (Sidekiq's own 60 s), refreshed by
#: every beat; not ``config.process_ttl_s``, the liveness key's.
PROCESS_HASH_TTL_S = 60
STATS_TTL_S = 5 * 365 * 24 * 3600


def rss_kb() -> int:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def flush_stats(pipe: Any, keys: Keys, processed: int, failed: int, at: float) -> None:
    day = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")
    for name, n in (("processed", processed), ("failed", failed)):
        if n:
            pipe.incrby(keys.stat(name), n)
            pipe.incrby(keys.stat_daily(name, day), n)
            pipe.expire(keys.stat_daily(name, day), STATS_TTL_S)


def flush_metrics(pipe: Any, keys: Keys, metrics: dict[str, list[int]], at: float) -> None:
    """Sidekiq 7's execution metrics: the minute hash and one histogram per class."""
    if not metrics:
        return
    now = datetime.fromtimestamp(at, UTC)
    key = keys.metrics(now)
    for job_class, m in metrics.items():
        pipe.hincrby(key, f"{job_class}|p", m[METRIC_P])
        if m[METRIC_F]:
            pipe.hincrby(key, f"{job_class}|f", m[METRIC_F])
        if m[METRIC_P] > m[METRIC_F]:
            pipe.hincrby(key, f"{job_class}|ms", m[METRIC_MS])
        args: list[Any] = []
        for i, n in enumerate(m[METRIC_HIST:]):
            if n:
                args += ["INCRBY", "u16", f"#{i}", n]
        if args:
            gram = keys.metrics_histogram(job_class, now)
            pipe.execute_command("BITFIELD", gram, "OVERFLOW", "SAT", *args)
            pipe.expire(gram, METRICS_TTL_S)
    pipe.expire(key, METRICS_TTL_S)


class Heartbeat:
    def __init__(
        self,
        redis: Redis,
        config: Config,
        keys: Keys,
        state: State,
        outage: Outage,
        on_signal: Callable[[str], None],
        on_first_beat: Callable[[], None],
    ) -> None:
        self.redis = redis
        self.config = config
        self.keys = keys
        self.state = state
        self.outage = outage
        self.on_signal = on_signal
        self.on_first_beat = on_first_beat
        self.info = orjson.dumps(self.info_dict())
        self.rtt_us = 0
        self._stop = threading.Event()
        self.pulse: Pulse | None = None
        #: The read end of the pipe the process's signal wakeup fd writes into (set
        #: by the launcher with its signal handlers): the pulse sees TERM even while
        #: a job holds the GIL, and enforces the stop's deadline.
        self.signal_fd: int | None = None
        self.thread = threading.Thread(target=self._run, name="roadie.heartbeat", daemon=True)

    def info_dict(self) -> dict[str, Any]:
        host, pid, _ = self.state.identity.rsplit(":", 2)
        return {
            "hostname": host,
            "started_at": self.state.started_at,
            "pid": int(pid) if pid.isdigit() else os.getpid(),
            "tag": self.config.tag,
            "concurrency": self.config.concurrency,
            "queues": list(self.config.queue_names),
            "weights": [dict(self.config.queues)],
            "labels": list(self.config.labels),
            "identity": self.state.identity,
            "version": f"roadie {VERSION}",
            "embedded": False,
        }

    def register(self) -> None:
        """Before the first fetch: mark this process alive and list it among the
        in-flight owners, so that a janitor finds its jobs if it dies. Unlike a beat,
        Redis runs this while full: a process started to drain a full Redis needs it."""
        ident = self.state.identity
        Scripts(self.redis).register(self.keys.alive(ident), self.keys.inflight_owners, ident,
                                     int(self.config.process_ttl_s * 1000))

    def _start_pulse(self) -> Pulse | None:
        ident = self.state.identity
        return Pulse.start(self.redis, self.keys.alive(ident), self.config,
                           record_key=self.keys.died(ident), running=self.state.slots,
                           signal_fd=self.signal_fd)

    def start(self) -> None:
        self.pulse = self._start_pulse()
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        # Before clear(): a pulse still running would write the liveness key again.
        if self.pulse is not None:
            self.pulse.stop()
        # Wait for a beat in progress: finishing after clear() would put a stopped
        # process back into `processes`.
        if self.thread.ident is not None and self.thread is not threading.current_thread():
            self.thread.join(self.config.socket_timeout_s + self.config.connect_timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.config.heartbeat_interval_s):
            self.beat()
            if self.pulse is not None and not self.pulse.alive and not self._stop.is_set():
                log.warning("the liveness pulse (pid %d) exited with code %s; starting "
                            "another", self.pulse.pid, self.pulse.returncode)
                self.pulse = self._start_pulse()

    def beat(self) -> bool:
        """One heartbeat; returns False (and keeps the counts) if Redis failed."""
        processed, failed = self.state.take_counts()
        metrics = self.state.take_metrics()
        try:
            t0 = time.monotonic()
            self.redis.ping()
            self.rtt_us = int((time.monotonic() - t0) * 1_000_000)
            now = time.time()
            ident = self.state.identity
            work = dict(self.state.work)
            pipe = self.redis.pipeline(transaction=True)
            flush_stats(pipe, self.keys, processed, failed, now)
            flush_metrics(pipe, self.keys, metrics, now)
            pipe.unlink(self.keys.work(ident), self.keys.workers(ident))
            if work:
                for key in (self.keys.work(ident), self.keys.workers(ident)):
                    pipe.hset(key, mapping=work)
                    pipe.expire(key, PROCESS_HASH_TTL_S)
            pipe.sadd(self.keys.processes, ident)
            pipe.exists(self.keys.process(ident))
            pipe.hset(self.keys.process(ident), mapping={
                "info": self.info,
                "busy": len(work),
                "beat": repr(now),
                "quiet": "true" if self.state.quiet.is_set() else "false",
                "rss": rss_kb(),
                "rtt_us": self.rtt_us,
                "concurrency": self.config.concurrency,
            })
            pipe.expire(self.keys.process(ident), PROCESS_HASH_TTL_S)
            pipe.rpop(self.keys.signals(ident))
            pipe.set(self.keys.alive(ident), b"1", px=int(self.config.process_ttl_s * 1000))
            pipe.sadd(self.keys.inflight_owners, ident)
            results = pipe.execute()
            # Queues paused from a dashboard: processors skip them from the next fetch.
            self.state.paused = frozenset(
                self.keys.queue(m.decode() if isinstance(m, bytes) else str(m))
                for m in self.redis.smembers(self.keys.paused)
            )
            self.outage.wrote()  # a MULTI of writes: Redis is not full
        except TRANSIENT as exc:
            self.state.restore_counts(processed, failed)
            self.state.restore_metrics(metrics)
            self.outage.failed(exc, "heartbeat")
            return False
        except Exception:
            self.state.restore_counts(processed, failed)
            self.state.restore_metrics(metrics)
            log.exception("heartbeat failed")
            return False
        existed, signal = results[-6], results[-3]
        try:
            self.prune()
        except Exception as exc:
            log.debug("pruning processes failed: %s", exc)
        if not existed:
            self.on_first_beat()
        if signal:
            self.on_signal(signal.decode() if isinstance(signal, bytes) else str(signal))
        return True

    def prune(self) -> int:
        """Drop processes whose hash expired (killed, OOM) from ``processes``.

        At most once a minute across the whole cluster (the ``process_cleanup``
        lock, as Sidekiq 6.5+), so the poller's process count stays true.
        """
        if not self.redis.set(self.keys.process_cleanup, b"1", nx=True, ex=60):
            return 0
        members = list(self.redis.smembers(self.keys.processes))
        if not members:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for m in members:
            pipe.hexists(self.keys.process(m.decode()), "info")
        gone = [m for m, has in zip(members, pipe.execute(), strict=True) if not has]
        if gone:
            self.redis.srem(self.keys.processes, *gone)
        return len(gone)

    def clear(self) -> None:
        """At clean exit: flush stats, leave ``processes``, drop work and liveness."""
        processed, failed = self.state.take_counts()
        metrics = self.state.take_metrics()
        ident = self.state.identity
        try:
            pipe = self.redis.pipeline(transaction=True)
            flush_stats(pipe, self.keys, processed, failed, time.time())
            flush_metrics(pipe, self.keys, metrics, time.time())
            pipe.srem(self.keys.processes, ident)
            pipe.unlink(self.keys.work(ident), self.keys.workers(ident), self.keys.alive(ident))
            # The in-flight list stays registered: a job fetched at the last moment
            # of a hard stop is still found, and the janitor forgets empty lists.
            pipe.execute()
        except Exception as exc:
            log.error("could not clear this process's heartbeat (%s); its keys expire "
                      "within %d s and the janitor recovers anything left", exc,
                      PROCESS_HASH_TTL_S)
