"""What a stop needs beyond the launcher's own steps: the signal pipe through which the
pulse sees TERM even while a job holds the GIL, the log line naming the jobs a stop
waits for, and the death record of a worker stopped for its memory use."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import orjson

from roadie import payload as pl
from roadie.server.state import run_mark

#: How many running jobs the waiting line names.
WAITING_NAMED = 20


class SignalPipe:
    """A pipe that Python's C-level signal handler writes every signal's number into
    (``signal.set_wakeup_fd``): at once, even while a job holds the GIL and no Python
    handler can run. The pulse reads the other end (``read_fd``) and kills the
    process if its stop overruns. Main thread only."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)  # set_wakeup_fd requires it
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)

    def close(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may unset the wakeup fd: keep the pipe
        signal.set_wakeup_fd(-1)
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def describe_running(raws: list[bytes]) -> str:
    """``"2 running job(s): Report 4b1f..., Mail 9c2e..."`` (the first 20 named)."""
    named = []
    for raw in raws[:WAITING_NAMED]:
        try:
            payload = pl.decode(raw)
            named.append(f"{pl.display_class(payload)} {payload.get('jid')}")
        except Exception:
            named.append(raw[:60].decode("utf-8", "replace"))
    more = f" and {len(raws) - WAITING_NAMED} more" if len(raws) > WAITING_NAMED else ""
    return f"{len(raws)} running job(s): {', '.join(named)}{more}"


def memory_death_record(raws: list[bytes], rss_mb: float, max_memory_mb: int,
                        timeout_s: float) -> bytes:
    """The death record (``roadie:died:<identity>``, as the pulse writes it) of a worker
    stopped for its memory use whose jobs ``raws`` did not finish in ``timeout_s``."""
    reason = (f"it was stopped for using {rss_mb:.0f} MB, more memory than max_memory_mb "
              f"(--max-memory) {max_memory_mb} MB, and the job did not finish within "
              f"timeout_s ({timeout_s:g} s)")
    return orjson.dumps({
        "running": [run_mark(raw).decode("latin-1") for raw in raws],
        "reason": reason, "pid": os.getpid(), "at": time.time(),
    })
