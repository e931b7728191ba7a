"""server/stopping.py: the line naming the jobs a stop waits for, the death record of
a worker stopped for its memory use, and the signal pipe that sees a signal at once,
even while no Python handler can run (no Redis)."""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

import orjson
import pytest

from roadie.server.state import run_mark
from roadie.server.stopping import (
    WAITING_NAMED,
    SignalPipe,
    describe_running,
    memory_death_record,
)


def raw(cls: str, jid: str, **more: object) -> bytes:
    return orjson.dumps({"class": cls, "args": [], "jid": jid, **more})


# --- describe_running ------------------------------------------------------------
def test_the_waiting_line_names_each_job_by_class_and_jid() -> None:
    jobs = [raw("Report", "4b1f"), raw("Wrapper", "9c2e", wrapped="Mail")]
    assert describe_running(jobs) == "2 running job(s): Report 4b1f, Mail 9c2e"


def test_the_waiting_line_names_the_first_ones_and_counts_the_rest() -> None:
    jobs = [raw("Job", f"j{i}") for i in range(WAITING_NAMED + 5)]
    line = describe_running(jobs)
    assert line.startswith(f"{WAITING_NAMED + 5} running job(s): Job j0, Job j1, ")
    assert f"Job j{WAITING_NAMED - 1} and 5 more" in line
    assert f"j{WAITING_NAMED}," not in line and not line.endswith(f"j{WAITING_NAMED}")


def test_an_entry_that_is_no_job_is_shown_as_its_start() -> None:
    garbage = b"not json at all, " * 10
    line = describe_running([garbage, raw("Report", "4b1f")])
    assert line == f"2 running job(s): {garbage[:60].decode()}, Report 4b1f"


# --- memory_death_record -----------------------------------------------------------
def test_the_memory_death_record_names_the_jobs_and_why() -> None:
    jobs = [raw("Big", "aaaa"), b"an entry without a jid"]
    before = time.time()

    record = orjson.loads(memory_death_record(jobs, 612.4, 512, 25.0))

    assert record["running"] == [run_mark(j).decode("latin-1") for j in jobs]
    assert record["running"][0] == "aaaa"
    assert record["pid"] == os.getpid()
    assert before <= record["at"] <= time.time()
    assert "using 612 MB" in record["reason"] and "max_memory_mb (--max-memory) 512 MB" in (
        record["reason"])
    assert "timeout_s (25 s)" in record["reason"]


# --- SignalPipe --------------------------------------------------------------------
@pytest.fixture
def usr1() -> Iterator[list[int]]:
    """SIGUSR1 with a Python handler (recording it) for the test; the previous handler
    and wakeup fd put back after."""
    got: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    previous = signal.signal(signal.SIGUSR1, handler)
    old_fd = signal.set_wakeup_fd(-1)
    try:
        yield got
    finally:
        signal.set_wakeup_fd(old_fd)
        signal.signal(signal.SIGUSR1, previous)


def test_a_signal_is_written_into_the_pipe(usr1: list[int]) -> None:
    pipe = SignalPipe()
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        readable, _, _ = select.select([pipe.read_fd], [], [], 5)
        assert readable == [pipe.read_fd]
        assert signal.SIGUSR1 in os.read(pipe.read_fd, 64)
    finally:
        pipe.close()
    assert usr1 == [signal.SIGUSR1]  # the Python handler still ran


def test_close_unsets_the_wakeup_fd_and_closes_the_pipe_from_the_main_thread_only(
    usr1: list[int],
) -> None:
    pipe = SignalPipe()
    t = threading.Thread(target=pipe.close)
    t.start()
    t.join(5)
    os.fstat(pipe.read_fd)  # another thread's close left it open (it may not unset)

    pipe.close()

    assert signal.set_wakeup_fd(-1) == -1  # no wakeup fd any more
    for fd in (pipe.read_fd, pipe.write_fd):
        with pytest.raises(OSError):
            os.fstat(fd)
