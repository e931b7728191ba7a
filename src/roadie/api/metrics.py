"""Execution metrics per job class: what Sidekiq 7's Metrics page shows.

roadie processes (and Sidekiq 7 processes) write, each UTC minute, a hash
``j|<YYYYMMDD>|<H>:<M>`` with ``<Class>|p`` (executions), ``<Class>|f`` (failures)
and ``<Class>|ms`` (milliseconds of successful runs), and a 26-bucket histogram
of successful run times per class (``<Class>-<DD>-<HH>:<M>``). Both expire after
8 hours, so a period covers at most the last 8 hours::

    result = Metrics(config).query(hours=4)
    for job in result.jobs:
        print(job.name, job.executions, job.failures, job.avg_ms)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from roadie.api.base import ApiBase, text, to_int
from roadie.keys import HISTOGRAM_BOUNDS_MS, HISTOGRAM_BUCKETS

#: The periods a dashboard offers, in hours (the data lives 8 hours).
PERIODS = (1, 2, 4, 8)

_GET_BUCKETS = [word for i in range(HISTOGRAM_BUCKETS) for word in ("GET", "u16", f"#{i}")]


def bucket_labels() -> list[str]:
    """A label per histogram bucket, fastest first: ``<20ms`` ... ``slow``."""
    return [f"<{_ms(b)}" for b in HISTOGRAM_BOUNDS_MS] + ["slow"]


def _ms(ms: int) -> str:
    return f"{ms}ms" if ms < 1000 else f"{ms / 1000:g}s"


@dataclass(slots=True)
class JobMetrics:
    """One job class over a period."""

    name: str
    executions: int = 0
    failures: int = 0
    #: Milliseconds of successful executions (failures add no time).
    total_ms: int = 0
    #: Successful run times: ``HISTOGRAM_BUCKETS`` counts, fastest bucket first.
    histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BUCKETS)

    @property
    def successes(self) -> int:
        return max(0, self.executions - self.failures)

    @property
    def avg_ms(self) -> float:
        """Average milliseconds of a successful execution (0 when none succeeded)."""
        return self.total_ms / self.successes if self.successes else 0.0


@dataclass(frozen=True, slots=True)
class MetricsResult:
    hours: int
    #: Epoch seconds of the first and the last minute covered.
    starts_at: float
    ends_at: float
    #: Classes, the most total time first.
    jobs: list[JobMetrics]

    @property
    def histogram(self) -> list[int]:
        """Every class's histogram summed, fastest bucket first."""
        out = [0] * HISTOGRAM_BUCKETS
        for job in self.jobs:
            for i, n in enumerate(job.histogram):
                out[i] += n
        return out


class Metrics(ApiBase):
    """Reads the execution metrics of the last ``hours`` (two pipelined round trips)."""

    def query(self, hours: int = 1, *, now: float | None = None,
              histogram: bool = True) -> MetricsResult:
        hours = max(1, min(int(hours), 8))
        end = datetime.fromtimestamp(time.time() if now is None else now, UTC).replace(
            second=0, microsecond=0)
        minutes = [end - timedelta(minutes=i) for i in range(hours * 60)]
        pipe = self.redis.pipeline(transaction=False)
        for at in minutes:
            pipe.hgetall(self.keys.metrics(at))
        jobs: dict[str, JobMetrics] = {}
        for fields in pipe.execute():
            for raw_key, raw_value in fields.items():
                name, sep, kind = text(raw_key).rpartition("|")
                if not sep:
                    continue
                job = jobs.get(name)
                if job is None:
                    job = jobs[name] = JobMetrics(name)
                n = to_int(raw_value)
                if kind == "p":
                    job.executions += n
                elif kind == "f":
                    job.failures += n
                elif kind == "ms":
                    job.total_ms += n
        if histogram and jobs:
            names = list(jobs)
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                for at in minutes:
                    pipe.execute_command("BITFIELD", self.keys.metrics_histogram(name, at),
                                         *_GET_BUCKETS)
            replies = iter(pipe.execute())
            for name in names:
                gram = jobs[name].histogram
                for _ in minutes:
                    for i, n in enumerate(next(replies) or ()):
                        gram[i] += to_int(n)
        ordered = sorted(jobs.values(), key=lambda j: (-j.total_ms, -j.executions, j.name))
        return MetricsResult(hours, minutes[-1].timestamp(), end.timestamp(), ordered)
