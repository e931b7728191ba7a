"""Start and end times of the I/O workload's sleeping jobs, written without a round
trip per job (standard library only: roadie's and the Python peers' workers use it).

The I/O workload measures first start to last end of 2,000 jobs that each sleep
10 ms. A job adds its "start end" string here; a daemon thread of the worker
process writes what has gathered with one ``RPUSH bench:io ...`` every 20 ms, where
the harness counts and reads them. A Redis call in each job would be measurement,
not workload: 65-95 µs of CPU per job, which on 2 cores bends the 100-executor
figures of every system.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

IO_KEY = "bench:io"
FLUSH_S = 0.02


class SpanLog:
    """``add(started, ended)`` from any thread or coroutine; written every FLUSH_S."""

    def __init__(self, client: Callable[[], Any], key: str = IO_KEY) -> None:
        self.client = client  # () -> a blocking redis-py client of this process
        self.key = key
        self.items: list[str] = []
        self.pid = 0  # the process whose thread writes (a forked worker starts its own)
        self.lock = threading.Lock()

    def add(self, started: float, ended: float) -> None:
        self.items.append(f"{started} {ended}")
        if self.pid != os.getpid():
            with self.lock:
                if self.pid != os.getpid():
                    self.pid = os.getpid()
                    threading.Thread(target=self._writer, name="bench.spanlog",
                                     daemon=True).start()

    def _writer(self) -> None:
        while True:
            time.sleep(FLUSH_S)
            n = len(self.items)
            if n:
                batch = self.items[:n]
                del self.items[:n]  # items appended meanwhile stay for the next write
                try:
                    self.client().rpush(self.key, *batch)
                except Exception as exc:  # keep them for the next write; say why
                    self.items[:0] = batch
                    print(f"spanlog: RPUSH failed ({exc}); retrying", file=sys.stderr)
