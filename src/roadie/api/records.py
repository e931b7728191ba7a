"""One job as stored in Redis, read for people: ``JobRecord``.

A record keeps the ``raw`` bytes exactly as read, because every removal by value
(``LREM``, ``ZREM``) must use them: re-encoding a payload written by Ruby would
not give the same bytes (key order, float digits, escapes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from roadie import payload as pl
from roadie.api.base import epoch, parse_object
from roadie.retry import decompress_backtrace


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job read from a queue, a sorted set or a work entry."""

    raw: bytes
    #: The decoded payload; empty when ``raw`` is not a JSON object (see ``parse_error``).
    payload: dict[str, Any] = field(compare=False)
    #: The queue it sits on, or would run on (``payload["queue"]``).
    queue: str = field(default="", compare=False)

    @classmethod
    def from_raw(cls, raw: bytes | str, queue: str | None = None) -> JobRecord:
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        payload = parse_object(data) or {}
        q = queue if queue is not None else str(payload.get("queue") or "")
        return cls(data, payload, q)

    # --- identity ---------------------------------------------------------------
    @property
    def parse_error(self) -> str | None:
        """Why this entry is not a job payload (None when it is one)."""
        if not self.payload:
            return "not a JSON object"
        if not isinstance(self.payload.get("class"), str):
            return "no 'class' string"
        if not isinstance(self.payload.get("args"), list):
            return "no 'args' list"
        return None

    @property
    def jid(self) -> str:
        return str(self.payload.get("jid") or "")

    @property
    def klass(self) -> str:
        """The payload's ``class`` (for ActiveJob, the wrapper class)."""
        return str(self.payload.get("class") or "")

    @property
    def display_class(self) -> str:
        """The class a person wants to see (ActiveJob jobs are unwrapped)."""
        if not self.payload:
            return "?"
        return pl.display_class(self.payload)

    @property
    def is_activejob(self) -> bool:
        return self.klass in pl.ACTIVEJOB_WRAPPERS

    @property
    def args(self) -> list[Any]:
        """The payload's ``args`` as stored."""
        args = self.payload.get("args")
        return args if isinstance(args, list) else []

    @property
    def display_args(self) -> list[Any]:
        """The job's own arguments (for ActiveJob, ``args[0]["arguments"]``)."""
        args = self.args
        if self.is_activejob and args and isinstance(args[0], dict):
            inner = args[0].get("arguments")
            if isinstance(inner, list):
                return inner
        return args

    @property
    def tags(self) -> list[str]:
        tags = self.payload.get("tags")
        return [str(t) for t in tags] if isinstance(tags, list) else []

    # --- times (epoch seconds, whatever unit the writer used) --------------------
    @property
    def created_at(self) -> float | None:
        return epoch(self.payload.get("created_at"))

    @property
    def enqueued_at(self) -> float | None:
        return epoch(self.payload.get("enqueued_at"))

    @property
    def failed_at(self) -> float | None:
        return epoch(self.payload.get("failed_at"))

    @property
    def retried_at(self) -> float | None:
        return epoch(self.payload.get("retried_at"))

    def latency(self, now: float | None = None) -> float:
        """Seconds since the job was enqueued (or created), 0.0 if unknown."""
        at = self.enqueued_at or self.created_at
        if at is None:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - at)

    # --- failure fields -----------------------------------------------------------
    @property
    def error_class(self) -> str | None:
        value = self.payload.get("error_class")
        return str(value) if value is not None else None

    @property
    def error_message(self) -> str | None:
        value = self.payload.get("error_message")
        return str(value) if value is not None else None

    @property
    def retry_count(self) -> int | None:
        value = self.payload.get("retry_count")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def error_backtrace(self) -> list[str]:
        """The stored backtrace lines (base64 zlib JSON, either base64 flavour)."""
        value = self.payload.get("error_backtrace")
        if isinstance(value, list):
            return [str(x) for x in value]
        if not isinstance(value, str) or not value:
            return []
        try:
            return decompress_backtrace(value)
        except Exception:
            return []

    def __getitem__(self, name: str) -> Any:
        return self.payload.get(name)
