"""How long a processor's jobs take: measured where they run (``runner.py``), read
where the next ones are fetched (``supply``: how many at once, and whether the event
loop fetches them meanwhile)."""

from __future__ import annotations

import time

#: Weight of the newest run in the quick average (``job_s``).
QUICK_WEIGHT = 0.25
#: Weight of the newest run in the steady average (``job_steady_s``).
STEADY_WEIGHT = 0.1


class Pace:
    """Moving averages of one processor's job durations, in seconds; 0 until it has
    timed one (most jobs are short: the first fetch takes a full batch)."""

    __slots__ = ("job_s", "job_steady_s")

    def __init__(self) -> None:
        #: Follows the last few runs: it sizes the next batch.
        self.job_s = 0.0
        #: A slower one, which a few long runs of short jobs (a thread kept waiting
        #: for the GIL) do not lift: it decides where the next batch is fetched.
        self.job_steady_s = 0.0

    def timed(self, t0: float) -> None:
        """A run that started at ``t0`` (``time.monotonic()``) just ended."""
        took = time.monotonic() - t0
        self.job_s += QUICK_WEIGHT * (took - self.job_s)
        self.job_steady_s += STEADY_WEIGHT * (took - self.job_steady_s)
