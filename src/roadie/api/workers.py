"""Jobs running now, across every live process: ``Workers`` and ``Work``.

Each process keeps a hash of its running jobs, field = thread id (``tid``),
value = ``{"queue": ..., "payload": ..., "run_at": ...}``. Sidekiq 6.5+ (and
roadie) name it ``<identity>:work``; Sidekiq 6.4 and older ``<identity>:workers``
(roadie writes both). ``payload`` is the job's raw JSON as a string, or an
embedded object from older writers; ``run_at`` is epoch seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from roadie.api.base import ApiBase, epoch, parse_object, text, to_int
from roadie.api.records import JobRecord


@dataclass(frozen=True, slots=True)
class Work:
    """One job running in one thread of one process."""

    identity: str
    tid: str
    queue: str
    #: Epoch seconds when the job started.
    run_at: float
    record: JobRecord = field(compare=False)

    @property
    def payload(self) -> dict[str, Any]:
        return self.record.payload

    @property
    def jid(self) -> str:
        return self.record.jid

    @property
    def display_class(self) -> str:
        return self.record.display_class


def parse_work(identity: str, tid: str, raw: bytes | str) -> Work | None:
    entry = parse_object(raw)
    if entry is None:
        return None
    inner = entry.get("payload")
    if isinstance(inner, dict):
        job_raw = orjson.dumps(inner)
    elif isinstance(inner, str):
        job_raw = inner.encode()
    else:
        job_raw = b""
    queue = str(entry.get("queue") or "")
    record = JobRecord.from_raw(job_raw, queue or None)
    return Work(identity, tid, record.queue, epoch(entry.get("run_at")) or 0.0, record)


class Workers(ApiBase):
    """``Workers(config).entries()``: every running job, oldest first."""

    def entries(self) -> list[Work]:
        idents = sorted(text(m) for m in self.redis.smembers(self.keys.processes))
        pipe = self.redis.pipeline(transaction=False)
        for ident in idents:
            pipe.hexists(self.keys.process(ident), "info")
            pipe.hgetall(self.keys.work(ident))
            pipe.hgetall(self.keys.workers(ident))
        replies = pipe.execute()
        out: list[Work] = []
        for i, ident in enumerate(idents):
            alive, work, workers = replies[3 * i : 3 * i + 3]
            if not alive:
                continue
            # Both names hold the same jobs when roadie wrote them; a Sidekiq
            # process writes only one of them.
            for tid, raw in (work or workers).items():
                parsed = parse_work(ident, text(tid), raw)
                if parsed is not None:
                    out.append(parsed)
        out.sort(key=lambda w: (w.run_at, w.identity, w.tid))
        return out

    def __iter__(self) -> Iterator[Work]:
        return iter(self.entries())

    def size(self) -> int:
        """Jobs running now: the sum of the processes' ``busy`` fields (as Sidekiq)."""
        idents = [text(m) for m in self.redis.smembers(self.keys.processes)]
        pipe = self.redis.pipeline(transaction=False)
        for ident in idents:
            pipe.hget(self.keys.process(ident), "busy")
        return sum(to_int(b) for b in pipe.execute())
