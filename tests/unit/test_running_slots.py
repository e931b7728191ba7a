"""The running jobs as the pulse sees them (``state.RunningSlots``, read back with
``litepulse.read_running``), and what the pulse makes of its parent's signals and
messages (``litepulse.Watch``)."""

from __future__ import annotations

import signal
import time

import orjson
import pytest

from roadie.server.pulse.lite import (
    KILL_GRACE_S,
    MEMORY_SIGNAL,
    SECOND_STOP_AFTER_S,
    Watch,
    read_running,
)
from roadie.server.state import State, run_mark

JID = "0123456789abcdef01234567"


def raw_job(jid: str = JID) -> bytes:
    return orjson.dumps({"class": "Work", "args": [{"jid": "nested"}], "jid": jid})


@pytest.mark.skipif(not hasattr(__import__("os"), "memfd_create"), reason="Linux memfd")
def test_the_pulse_reads_the_jobs_running_now() -> None:
    state = State("host:1:abc", slots=3)
    assert state.slots is not None
    fd, size = state.slots.fd, state.slots.size
    state.start_work("t1", "default", raw_job("a" * 24))
    state.start_work("t2", "default", raw_job("b" * 24))
    state.start_work("t3", "default", b"not json at all")
    state.end_work("t2")
    # The same thread's next job takes its slot again.
    state.start_work("t1", "default", raw_job("c" * 24))

    assert sorted(read_running(fd, size)) == sorted(["c" * 24, run_mark(b"not json at all")
                                                     .decode()])


def test_run_mark_is_the_jid_or_a_checksum() -> None:
    # The last "jid" of the raw: the clients write the job's own after its arguments.
    assert run_mark(raw_job()) == JID.encode()
    assert run_mark(orjson.dumps({"jid": JID, "class": "W"})) == JID.encode()
    assert run_mark(b'{"class":"W"}').startswith(b"~")
    assert run_mark(b'{"class":"W"}') == run_mark(b'{"class":"W"}')
    assert run_mark(b'{"jid":"' + b"x" * 100 + b'"}').startswith(b"~")  # too long for a slot


def test_no_slots_cost_nothing_and_record_nothing() -> None:
    state = State("host:1:abc")
    state.start_work("t1", "default", raw_job())
    assert state.slots is None
    assert state.running_raws() == [raw_job()]


def settings(timeout_s: float = 10.0) -> dict[str, object]:
    return {"stop_timeout_s": timeout_s, "max_memory_mb": 120}


def test_a_first_term_gives_the_timeout_and_the_grace() -> None:
    watch = Watch(settings(10.0))
    t0 = time.monotonic()
    watch.signals(bytes([signal.SIGTERM]))
    assert watch.deadline is not None
    assert t0 + 10.0 + KILL_GRACE_S <= watch.deadline <= time.monotonic() + 10.0 + KILL_GRACE_S
    assert not watch.clean and watch.stops == 1


def test_the_same_term_delivered_twice_is_one_stop() -> None:
    watch = Watch(settings(10.0))
    watch.signals(bytes([signal.SIGINT, signal.SIGTERM]))  # terminal + supervisor
    assert watch.stops == 1
    # The launcher's own message about the same stop does not shorten it either.
    watch.lines(orjson.dumps({"stopping_s": 10.0 + KILL_GRACE_S}) + b"\n")
    assert watch.stops == 1
    assert watch.deadline is not None and watch.deadline > time.monotonic() + 10.0


def test_a_second_term_leaves_only_the_grace() -> None:
    watch = Watch(settings(60.0))
    watch.signals(bytes([signal.SIGTERM]))
    watch.stop_began -= SECOND_STOP_AFTER_S  # as if the first came a second ago
    watch.signals(bytes([signal.SIGTERM]))
    assert watch.stops == 2
    assert watch.deadline is not None and watch.deadline <= time.monotonic() + KILL_GRACE_S


def test_messages_clean_stop_and_stop_from_redis() -> None:
    watch = Watch(settings(5.0))
    # Split across reads, with garbage around: only whole JSON lines count.
    watch.lines(b'{"stopping_s": 8')
    assert watch.deadline is None
    watch.lines(b'}\nnot json\n[1]\n{"stop": "clean"}\n')
    assert watch.stops == 1 and watch.deadline is not None and watch.clean


def test_the_memory_signal_is_a_stop_that_names_the_limit() -> None:
    watch = Watch(settings(5.0))
    watch.signals(bytes([MEMORY_SIGNAL, signal.SIGTSTP, signal.SIGTTIN]))
    assert watch.stops == 1
    assert "max_memory_mb (--max-memory) 120 MB" in watch.reason
