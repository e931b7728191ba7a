"""Loaded by the periodic system test's ``roadie run`` processes (``-r``): a job that
records each tick it was pushed for, and a schedule that fires every second.

The test process must not import it (it would declare the schedule there too)."""

from __future__ import annotations

import os

import orjson
from sysjobs import rdb

import roadie

#: List of JSON records {"jid", "at" (the tick), "pid" (who ran it)}.
TICKS = "sys:periodic:ticks"


class PeriodicTick(roadie.Job, name="sys.PeriodicTick"):
    def perform(self, label: str) -> None:
        rdb().rpush(TICKS, orjson.dumps({
            "jid": self.jid, "at": self.payload["periodic_at"], "pid": os.getpid(),
            "label": label,
        }))


# Six fields: the last is seconds, so this fires every second.
roadie.periodic("* * * * * *", PeriodicTick, ["tick"], name="every-second")
