"""State shared by the threads of one roadie process."""

from __future__ import annotations

import os
import socket
import threading
import time
from bisect import bisect_right

import orjson

from roadie.keys import HISTOGRAM_BOUNDS_MS, HISTOGRAM_BUCKETS

#: One class's metrics since the last flush: executions, failures, ms of successes,
#: then the histogram buckets of successful run times.
METRIC_P, METRIC_F, METRIC_MS, METRIC_HIST = 0, 1, 2, 3
METRIC_SIZE = METRIC_HIST + HISTOGRAM_BUCKETS


def make_identity() -> str:
    """``<hostname>:<pid>:<12 hex>``, as Sidekiq names a process."""
    host = os.environ.get("DYNO") or socket.gethostname()
    return f"{host}:{os.getpid()}:{os.urandom(6).hex()}"


class State:
    def __init__(self, identity: str | None = None) -> None:
        self.identity = identity or make_identity()
        self.started_at = time.time()
        #: Set by TSTP (or the first step of TERM): fetch nothing more.
        self.quiet = threading.Event()
        #: Set by TERM/INT: the process is shutting down.
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._processed = 0
        self._failed = 0
        #: Job class -> counters (layout ``METRIC_*``), flushed by the heartbeat.
        self._metrics: dict[str, list[int]] = {}
        #: tid -> (queue, raw payload, start time) of each running job.
        self._running: dict[str, tuple[str, bytes, int]] = {}
        #: Keys of paused queues (the ``paused`` set, read by each heartbeat).
        self.paused: frozenset[str] = frozenset()

    def count(self, *, failed: bool, job_class: str | None = None, ms: int = 0) -> None:
        """Count one job; with ``job_class``, also its metrics (``ms`` if it succeeded)."""
        with self._lock:
            self._processed += 1
            if failed:
                self._failed += 1
            if job_class is None:
                return
            m = self._metrics.get(job_class)
            if m is None:
                m = self._metrics[job_class] = [0] * METRIC_SIZE
            m[METRIC_P] += 1
            if failed:
                m[METRIC_F] += 1
            else:
                m[METRIC_MS] += ms
                m[METRIC_HIST + bisect_right(HISTOGRAM_BOUNDS_MS, ms)] += 1

    def take_metrics(self) -> dict[str, list[int]]:
        with self._lock:
            metrics, self._metrics = self._metrics, {}
            return metrics

    def restore_metrics(self, metrics: dict[str, list[int]]) -> None:
        with self._lock:
            for job_class, counts in metrics.items():
                m = self._metrics.get(job_class)
                if m is None:
                    self._metrics[job_class] = counts
                else:
                    for i, n in enumerate(counts):
                        m[i] += n

    def take_counts(self) -> tuple[int, int]:
        with self._lock:
            p, f = self._processed, self._failed
            self._processed = self._failed = 0
            return p, f

    def restore_counts(self, processed: int, failed: int) -> None:
        with self._lock:
            self._processed += processed
            self._failed += failed

    def start_work(self, tid: str, queue: str, raw: bytes) -> None:
        self._running[tid] = (queue, raw, int(time.time()))

    def end_work(self, tid: str) -> None:
        self._running.pop(tid, None)

    @property
    def work(self) -> dict[str, bytes]:
        """tid -> work entry JSON, what the heartbeat writes to ``<identity>:work``.

        Encoded here, once per beat, rather than once per job.
        """
        return {
            tid: orjson.dumps({"queue": queue, "payload": raw.decode("utf-8", "replace"),
                               "run_at": run_at})
            for tid, (queue, raw, run_at) in list(self._running.items())
        }

    @property
    def busy(self) -> int:
        return len(self._running)
