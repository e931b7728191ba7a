"""State shared by the threads of one roadie process."""

from __future__ import annotations

import logging
import mmap
import os
import socket
import tempfile
import threading
import time
import zlib
from bisect import bisect_right

import orjson

from roadie.keys import HISTOGRAM_BOUNDS_MS, HISTOGRAM_BUCKETS
from roadie.server.pulse.lite import SLOT_SIZE

log = logging.getLogger("roadie")

#: One class's metrics since the last flush: executions, failures, ms of successes,
#: then the histogram buckets of successful run times.
METRIC_P, METRIC_F, METRIC_MS, METRIC_HIST = 0, 1, 2, 3
METRIC_SIZE = METRIC_HIST + HISTOGRAM_BUCKETS


def make_identity() -> str:
    """``<hostname>:<pid>:<12 hex>``, as Sidekiq names a process."""
    host = os.environ.get("DYNO") or socket.gethostname()
    return f"{host}:{os.getpid()}:{os.urandom(6).hex()}"


_JID = b'"jid":"'  # 7 bytes


def run_mark(raw: bytes) -> bytes:
    """What names a running job in the shared slots and the death record: its jid,
    found in the raw JSON without decoding it (a few hundred ns), else a checksum of
    the raw. The janitor computes it from the in-flight entries the same way.

    The *last* ``"jid":"`` of the raw: roadie's and Sidekiq's clients add the jid
    after the job's arguments, which may hold a ``jid`` of their own."""
    i = raw.rfind(_JID) + len(_JID)
    if i >= len(_JID):
        j = raw.find(b'"', i)
        if 0 < j - i < SLOT_SIZE:
            return raw[i:j]
    return b"~%08x" % zlib.crc32(raw)


class RunningSlots:
    """Which job each processor runs, in memory shared with the liveness pulse.

    One ``SLOT_SIZE`` slot per processor thread: a length byte, then the running
    job's ``run_mark``, written when the job starts and cleared when it ends (two
    memory writes, no round trip). If the process dies, its pulse, a child process
    that outlives it, reads them and writes the death record: only those jobs count
    a crash (``litepulse.serve``, ``janitor``). Backed by a memfd (a tmpfile where
    there is none), whose fd the pulse inherits.
    """

    def __init__(self, count: int) -> None:
        self.size = count * SLOT_SIZE
        if hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("roadie-running", os.MFD_CLOEXEC)
        else:  # pragma: no cover - macOS
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the slots
            self.fd = self._file.fileno()
        os.ftruncate(self.fd, self.size)
        self._mm = mmap.mmap(self.fd, self.size)
        self._offset: dict[str, int] = {}
        self._free = list(range(self.size - SLOT_SIZE, -1, -SLOT_SIZE))
        self._lock = threading.Lock()

    def _assign(self, tid: str) -> int | None:
        with self._lock:
            if tid not in self._offset:
                if not self._free:
                    log.warning("no free slot to note the jobs of processor %s: a crash of "
                                "this process will not count against them", tid)
                    self._offset[tid] = -1
                else:
                    self._offset[tid] = self._free.pop()
            off = self._offset[tid]
            return None if off < 0 else off

    def started(self, tid: str, raw: bytes) -> None:
        off = self._offset.get(tid)
        if off is None:
            off = self._assign(tid)
        if off is None or off < 0:
            return
        # run_mark, inlined (this runs for every job).
        i = raw.rfind(_JID) + 7
        j = raw.find(b'"', i) if i >= 7 else -1
        mark = raw[i:j] if 0 < j - i < SLOT_SIZE else run_mark(raw)
        mm = self._mm
        mm[off + 1:off + 1 + len(mark)] = mark
        mm[off] = len(mark)  # last: a process killed halfway leaves no half mark

    def ended(self, tid: str) -> None:
        off = self._offset.get(tid)
        if off is not None and off >= 0:
            self._mm[off] = 0


class State:
    def __init__(self, identity: str | None = None, *, slots: int = 0) -> None:
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
        #: The running jobs as the pulse sees them (``slots`` processors; 0: none).
        self.slots = RunningSlots(slots) if slots > 0 else None

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
        if self.slots is not None:
            self.slots.started(tid, raw)

    def end_work(self, tid: str) -> None:
        self._running.pop(tid, None)
        if self.slots is not None:
            self.slots.ended(tid)

    def running_raws(self) -> list[bytes]:
        """The raws of the jobs running now (read from another thread)."""
        return [raw for _, raw, _ in list(self._running.values())]

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
