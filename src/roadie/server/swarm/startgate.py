"""The workers of ``roadie run -P N`` start their jobs together.

Forked one after another, N workers used to begin work a few ms apart, and each one's
start-up (connections, threads) ran while the others' first jobs did, on the same
cores: 2,000 jobs of 10 ms at ``-P 2 -c 50`` had lanes starting up to 25 ms late.
Now each initial worker gets everything ready, says so on a pipe, and waits; the
supervisor, once all have said so (or after ``START_TOGETHER_S``, or on a signal),
closes the other pipe, which wakes them all at once. Then each deals its processors
their first jobs (``processor.deal``). A worker started later (a replacement) does not
wait.
"""

from __future__ import annotations

import contextlib
import os
import select
import time

#: Longest the supervisor holds back ready workers for the others to get ready.
START_TOGETHER_S = 2.0


class StartGate:
    """Two pipes made before the initial workers are forked."""

    def __init__(self) -> None:
        self._ready_r, self._ready_w = os.pipe()  # a byte from each worker that is ready
        self._go_r, self._go_w = os.pipe()  # closed by the supervisor: "go"
        self._open = True

    def worker_side(self) -> None:
        """In a worker, right after the fork: keep only the worker's ends."""
        for fd in (self._ready_r, self._go_w):
            os.close(fd)

    def wait_for_go(self, timeout: float = 2 * START_TOGETHER_S) -> None:
        """In a worker: say it is ready, then wait until the supervisor says go (or
        ``timeout`` s, should the supervisor not)."""
        try:
            with contextlib.suppress(OSError):
                os.write(self._ready_w, b".")
            with contextlib.suppress(OSError, InterruptedError):
                select.select([self._go_r], [], [], timeout)
        finally:
            for fd in (self._ready_w, self._go_r):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def release(self, expected: int, wakeup_fd: int | None = None,
                timeout: float = START_TOGETHER_S) -> int:
        """In the supervisor, after forking: wait until ``expected`` workers are
        ready, ``timeout`` s have passed or ``wakeup_fd`` is readable (a signal came),
        then let them all go. Returns how many said they were ready."""
        # The supervisor's copies of the workers' ends: a worker that dies then
        # closes the last copy of its own, and the wait below sees it.
        for fd in (self._ready_w, self._go_r):
            os.close(fd)
        ready = 0
        deadline = time.monotonic() + timeout
        watched = [self._ready_r] if wakeup_fd is None else [self._ready_r, wakeup_fd]
        try:
            while ready < expected:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    readable, _, _ = select.select(watched, [], [], left)
                except InterruptedError:
                    continue
                if self._ready_r not in readable:
                    break  # a signal (or nothing): go now
                got = os.read(self._ready_r, 64)
                if not got:
                    break  # every worker's end is closed
                ready += len(got)
        finally:
            self.close()
        return ready

    def close(self) -> None:
        """Let every waiting worker go; release the supervisor's ends."""
        if self._open:
            self._open = False
            for fd in (self._go_w, self._ready_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
