"""The read/admin layer: what a dashboard or a CLI reads and does, for roadie's
data and Sidekiq's alike (one Redis, same keys).

::

    from roadie.api import DeadSet, ProcessSet, Queue, RetrySet, Stats, Workers

    Stats(config).summary().processed
    Queue("default", config).latency()
    RetrySet(config).find_job(jid).retry()
    for process in ProcessSet(config):
        print(process.identity, process.busy, process.concurrency)

Every class takes a ``Config`` (and connects), or ``redis=`` plus ``keys=`` to
share a connection. The running process (``roadie.server``) never imports this
package.
"""

from roadie.api.metrics import JobMetrics, Metrics, MetricsResult
from roadie.api.processes import Process, ProcessSet
from roadie.api.queues import Queue, queue_sizes, queues
from roadie.api.records import JobRecord
from roadie.api.sorted_sets import (
    DeadSet,
    JobKilled,
    RetrySet,
    ScheduledSet,
    SortedEntry,
    SortedSet,
)
from roadie.api.stats import History, Stats, Summary
from roadie.api.workers import Work, Workers

__all__ = [
    "DeadSet",
    "History",
    "JobKilled",
    "JobMetrics",
    "JobRecord",
    "Metrics",
    "MetricsResult",
    "Process",
    "ProcessSet",
    "Queue",
    "RetrySet",
    "ScheduledSet",
    "SortedEntry",
    "SortedSet",
    "Stats",
    "Summary",
    "Work",
    "Workers",
    "queue_sizes",
    "queues",
]
