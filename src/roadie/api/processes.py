"""Running processes (roadie's and Sidekiq's): ``ProcessSet`` and ``Process``.

A process is *live* while it is a member of ``processes`` **and** its
``<identity>`` hash still has ``info`` (the hash has a 60 s TTL, refreshed every
beat). That is Sidekiq's rule; there is no check of the beat's age.

Quiet and stop go through Redis, as from Sidekiq's dashboard: one MULTI pushes
``TSTP`` or ``TERM`` onto ``<identity>-signals`` and sets its TTL to 60 s; the
process pops one signal per heartbeat.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from roadie.api.base import ApiBase, epoch, parse_object, text, to_float, to_int

SIGNAL_TTL_S = 60
CLEANUP_LOCK_S = 60

_FIELDS = ("info", "busy", "beat", "quiet", "rss", "rtt_us", "concurrency")


@dataclass(frozen=True, slots=True)
class Process:
    """One live process as its heartbeat describes it."""

    identity: str
    hostname: str
    pid: int
    tag: str
    #: Epoch seconds (float), whatever unit the writer used.
    started_at: float | None
    #: Threads: the hash field (Sidekiq 8.1.2+, roadie), else ``info["concurrency"]``.
    concurrency: int
    busy: int
    beat: float
    #: True once the process is quiet or stopping (hash field ``quiet`` == "true").
    is_quiet: bool
    rss_kb: int
    rtt_us: int
    queues: list[str]
    labels: list[str]
    version: str
    embedded: bool
    #: The whole ``info`` object, for fields not named above (weights, capsules...).
    info: dict[str, Any] = field(compare=False, repr=False)
    owner: ProcessSet | None = field(default=None, compare=False, repr=False)

    @property
    def stopping(self) -> bool:
        return self.is_quiet

    @property
    def is_roadie(self) -> bool:
        return self.version.startswith("roadie")

    def quiet(self) -> None:
        """Ask the process to stop fetching jobs (TSTP through Redis)."""
        self._signal("TSTP")

    def stop(self) -> None:
        """Ask the process to shut down (TERM through Redis)."""
        self._signal("TERM")

    def dump_threads(self) -> None:
        """Ask the process to log every thread's stack (TTIN through Redis)."""
        self._signal("TTIN")

    def _signal(self, name: str) -> None:
        if self.owner is None:
            raise RuntimeError("this Process was not read through a ProcessSet")
        self.owner.signal(self.identity, name)


def parse_process(identity: str, values: list[Any], owner: ProcessSet | None = None
                  ) -> Process | None:
    """A ``Process`` from ``HMGET <identity>`` of ``_FIELDS``; None if not live."""
    info_raw, busy, beat, quiet, rss, rtt, conc = values
    if info_raw is None:
        return None
    info = parse_object(info_raw) or {}
    concurrency = to_int(conc, -1)
    if concurrency < 0:
        concurrency = to_int(info.get("concurrency"))
    queues = info.get("queues")
    labels = info.get("labels")
    host, pid = _host_pid(identity)
    return Process(
        identity=str(info.get("identity") or identity),
        hostname=str(info.get("hostname") or host),
        pid=to_int(info.get("pid"), pid),
        tag=str(info.get("tag") or ""),
        started_at=epoch(info.get("started_at")),
        concurrency=concurrency,
        busy=to_int(busy),
        beat=to_float(beat),
        is_quiet=text(quiet) == "true",
        rss_kb=to_int(rss),
        rtt_us=to_int(rtt),
        queues=[str(q) for q in queues] if isinstance(queues, list) else [],
        labels=[str(x) for x in labels] if isinstance(labels, list) else [],
        version=str(info.get("version") or ""),
        embedded=info.get("embedded") is True,
        info=info,
        owner=owner,
    )


def _host_pid(identity: str) -> tuple[str, int]:
    parts = identity.rsplit(":", 2)
    if len(parts) == 3:
        return parts[0], to_int(parts[1])
    return identity, 0


class ProcessSet(ApiBase):
    """Every live process, sorted by identity."""

    def identities(self) -> list[str]:
        return sorted(text(m) for m in self.redis.smembers(self.keys.processes))

    def processes(self) -> list[Process]:
        idents = self.identities()
        pipe = self.redis.pipeline(transaction=False)
        for ident in idents:
            pipe.hmget(self.keys.process(ident), list(_FIELDS))
        out = []
        for ident, values in zip(idents, pipe.execute(), strict=True):
            proc = parse_process(ident, values, self)
            if proc is not None:
                out.append(proc)
        return out

    def __iter__(self) -> Iterator[Process]:
        return iter(self.processes())

    def get(self, identity: str) -> Process | None:
        values = self.redis.hmget(self.keys.process(identity), list(_FIELDS))
        if not self.redis.sismember(self.keys.processes, identity):
            return None
        return parse_process(identity, values, self)

    def size(self) -> int:
        """``SCARD processes``, as Sidekiq's ``ProcessSet#size`` (not pruned)."""
        return int(self.redis.scard(self.keys.processes))

    def total_concurrency(self) -> int:
        return sum(p.concurrency for p in self.processes())

    def total_rss_kb(self) -> int:
        return sum(p.rss_kb for p in self.processes())

    def prune(self, *, once_a_minute: bool = False) -> int:
        """Remove members of ``processes`` whose hash has no ``info`` (dead ones).

        With ``once_a_minute``, do it only if no one did in the last minute (the
        ``process_cleanup`` lock of Sidekiq 6.5.2+). Returns how many were removed.
        """
        if once_a_minute and not self.redis.set(
            self.keys.process_cleanup, b"1", nx=True, ex=CLEANUP_LOCK_S
        ):
            return 0
        idents = self.identities()
        pipe = self.redis.pipeline(transaction=False)
        for ident in idents:
            pipe.hexists(self.keys.process(ident), "info")
        dead = [i for i, alive in zip(idents, pipe.execute(), strict=True) if not alive]
        if not dead:
            return 0
        return int(self.redis.srem(self.keys.processes, *dead))

    def signal(self, identity: str, name: str) -> None:
        """Send a signal name (TSTP, TERM, TTIN) to a process through Redis."""
        key = self.keys.signals(identity)
        pipe = self.redis.pipeline(transaction=True)
        pipe.lpush(key, name)
        pipe.expire(key, SIGNAL_TTL_S)
        pipe.execute()

    def quiet_all(self) -> int:
        """Quiet every live process that can be quieted (not embedded ones)."""
        return self._signal_all("TSTP")

    def stop_all(self) -> int:
        return self._signal_all("TERM")

    def _signal_all(self, name: str) -> int:
        targets = [p for p in self.processes() if not p.embedded]
        for p in targets:
            self.signal(p.identity, name)
        return len(targets)
