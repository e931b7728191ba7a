"""Every Redis key name roadie reads or writes is built here, and only here.

Sidekiq's keys (``queue:<name>``, ``queues``, ``schedule``, ``retry``, ``dead``,
``processes``, ``<identity>``, ``stat:*``) keep Sidekiq's exact names so a Ruby
app and a Python app can share one Redis. Keys that Sidekiq does not have live
under ``roadie:``. An optional namespace prefixes everything (for users who share
one Redis database between apps, or talk to a namespaced Sidekiq 6 install).

``docs/redis.md`` lists every key with its type, writer and TTL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under an optional namespace (``""`` means none)."""

    namespace: str = ""

    def _k(self, name: str) -> str:
        return f"{self.namespace}:{name}" if self.namespace else name

    # --- Sidekiq's keys -------------------------------------------------
    @property
    def queues(self) -> str:
        return self._k("queues")

    def queue(self, name: str) -> str:
        return self._k(f"queue:{name}")

    @property
    def queue_prefix(self) -> str:
        return self._k("queue:")

    @property
    def schedule(self) -> str:
        return self._k("schedule")

    @property
    def retry(self) -> str:
        return self._k("retry")

    @property
    def dead(self) -> str:
        return self._k("dead")

    @property
    def processes(self) -> str:
        return self._k("processes")

    def process(self, identity: str) -> str:
        return self._k(identity)

    def work(self, identity: str) -> str:
        """Running jobs of a process, as Sidekiq 6.5+ names it."""
        return self._k(f"{identity}:work")

    def workers(self, identity: str) -> str:
        """Running jobs of a process, as Sidekiq <= 6.4 names it (written too)."""
        return self._k(f"{identity}:workers")

    def signals(self, identity: str) -> str:
        return self._k(f"{identity}-signals")

    def stat(self, name: str) -> str:
        return self._k(f"stat:{name}")

    def stat_daily(self, name: str, day: str) -> str:
        return self._k(f"stat:{name}:{day}")

    @property
    def process_cleanup(self) -> str:
        return self._k("process_cleanup")

    @property
    def paused(self) -> str:
        """Set of paused queue names (Sidekiq Pro's name); processes skip them."""
        return self._k("paused")

    # --- roadie's own keys ----------------------------------------------
    def inflight(self, identity: str) -> str:
        """Jobs a process has fetched and not yet finished (reliable fetch)."""
        return self._k(f"roadie:inflight:{identity}")

    @property
    def inflight_owners(self) -> str:
        """Set of identities that may own an in-flight list (the janitor's index)."""
        return self._k("roadie:inflight-owners")

    def alive(self, identity: str) -> str:
        """Short-TTL liveness key; its absence lets the janitor recover jobs."""
        return self._k(f"roadie:alive:{identity}")

    def died(self, identity: str) -> str:
        """A dead process's death record: the jobs it was running when it died (JSON),
        written by its pulse; the janitor counts a crash only for those."""
        return self._k(f"roadie:died:{identity}")

    def recover_lock(self, identity: str) -> str:
        return self._k(f"roadie:lock:recover:{identity}")

    @property
    def periodic(self) -> str:
        """Hash: periodic schedule name -> its JSON definition, from running processes."""
        return self._k("roadie:periodic")

    @property
    def periodic_last(self) -> str:
        """Hash: periodic schedule name -> its last tick pushed (epoch seconds)."""
        return self._k("roadie:periodic:last")

    # --- Sidekiq 7's execution metrics (SIDEKIQ-WIRE.md section 11) -----
    def metrics(self, at: datetime) -> str:
        """Hash of one UTC minute: ``<Class>|p``, ``|f``, ``|ms`` (``j|20240214|8:3``)."""
        return self._k(f"j|{at:%Y%m%d}|{at.hour}:{at.minute}")

    def metrics_histogram(self, job_class: str, at: datetime) -> str:
        """Run-time histogram of one class in one UTC minute (``Foo-14-08:3``)."""
        return self._k(f"{job_class}-{at:%d-%H}:{at.minute}")


#: Upper bounds (ms, exclusive) of Sidekiq 7's 26 histogram buckets; the last is "slow".
HISTOGRAM_BOUNDS_MS = (
    20, 30, 45, 65, 100, 150, 225, 335, 500, 750, 1100, 1700, 2500, 3800, 5750, 8500,
    13000, 20000, 30000, 45000, 65000, 100000, 150000, 225000, 335000,
)
HISTOGRAM_BUCKETS = len(HISTOGRAM_BOUNDS_MS) + 1
#: TTL of the minute hashes and histograms (Sidekiq 7: 8 hours).
METRICS_TTL_S = 8 * 3600
#: How long a death record waits for a janitor (one deletes it once it has
#: recovered the process's jobs): long enough for every process to be down a while.
DEATH_RECORD_TTL_S = 7 * 24 * 3600
