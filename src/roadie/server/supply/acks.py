"""Acknowledgements a processor holds: successes whose ``LREM`` rides on its next
fetch (``fetch.lua``) instead of costing a round trip each (the ``deferred_ack``
speed mechanism), or is written by the manager once older than ``ACK_DELAY_S``."""

from __future__ import annotations

import threading
import time

#: Longest a succeeded job waits for its acknowledgement to ride on a fetch.
ACK_DELAY_S = 0.05


class PendingAcks:
    """Raws of one processor's succeeded jobs, not acknowledged yet. They are still
    in the in-flight list: after a kill -9 they run again (at least once), never
    lost. Taken by whoever writes them: the processor's next fetch, the event loop's
    fetch for it, or the manager's flush."""

    def __init__(self) -> None:
        self.raws: list[bytes] = []
        self._since = 0.0
        self._lock = threading.Lock()

    def add(self, raw: bytes) -> None:
        with self._lock:
            if not self.raws:
                self._since = time.monotonic()
            self.raws.append(raw)

    def take(self, older_than: float = 0.0) -> list[bytes]:
        """All of them, or none if the oldest is younger than ``older_than`` s."""
        with self._lock:
            if not self.raws or time.monotonic() - self._since < older_than:
                return []
            raws, self.raws = self.raws, []
            return raws

    def restore(self, raws: list[bytes]) -> None:
        """Give back acknowledgements that could not be written (Redis is away)."""
        if raws:
            with self._lock:
                if not self.raws:
                    self._since = time.monotonic()
                self.raws[:0] = raws
