"""Jobs for the HA tests' ``roadie run`` processes (``-r .../ha_jobs.py``).

Each job counts its run in a *ledger*: a separate redis-server (``HA_LEDGER_URL``)
that no failover touches, so runs and duplicates are counted exactly even when the
Redis that holds the queues loses writes.
"""

from __future__ import annotations

import os
import threading

import redis

import roadie

RUNS = "ha:runs"

_lock = threading.Lock()
_ledger: redis.Redis | None = None


def ledger() -> redis.Redis:
    global _ledger
    with _lock:
        if _ledger is None:
            _ledger = redis.Redis.from_url(os.environ["HA_LEDGER_URL"], socket_timeout=5.0)
        return _ledger


class Count(roadie.Job, name="ha.Count"):
    """Adds one to field ``index`` of the ledger's ``ha:runs`` hash."""

    def perform(self, index: int) -> None:
        ledger().hincrby(RUNS, str(index), 1)
