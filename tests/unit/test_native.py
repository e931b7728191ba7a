"""server/native.py: raising ``Shutdown`` in a running thread (a hard stop ends a
job's run), and Linux's death signal for a worker whose parent dies (no Redis)."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from roadie.errors import Shutdown
from roadie.server.native import interrupt


def test_interrupt_raises_shutdown_in_the_thread_at_its_next_instruction() -> None:
    running, stop = threading.Event(), threading.Event()
    caught: list[BaseException] = []

    def job() -> None:
        running.set()
        try:
            while not stop.wait(0.01):  # Python code between waits: where it lands
                pass
        except Shutdown as exc:
            caught.append(exc)

    t = threading.Thread(target=job)
    t.start()
    try:
        assert running.wait(5)
        assert interrupt(t) is True
        t.join(5)
    finally:
        stop.set()
    assert not t.is_alive()
    assert len(caught) == 1 and isinstance(caught[0], Shutdown)


def test_interrupt_of_a_thread_not_running_does_nothing() -> None:
    never_started = threading.Thread(target=lambda: None)
    assert interrupt(never_started) is False
    ended = threading.Thread(target=lambda: None)
    ended.start()
    ended.join(5)
    assert interrupt(ended) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_term_when_parent_dies_sets_the_death_signal_to_term() -> None:
    # In a child process: set in this one, it would outlive the test.
    code = (
        "import ctypes, signal\n"
        "from roadie.server.native import term_when_parent_dies\n"
        "ok = term_when_parent_dies()\n"
        "sig = ctypes.c_int()\n"
        "ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG\n"
        "print(ok, sig.value == signal.SIGTERM)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=True)
    assert done.stdout.split() == ["True", "True"]
