"""``roadie run -P N``: the initial workers wait for each other before their first
fetch (``roadie.server.swarm.startgate``), with real forked processes and pipes."""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable

import pytest

from roadie.server.swarm.startgate import StartGate

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")


def fork(body: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            body()
            code = 0
        finally:
            os._exit(code)
    return pid


def reap(pids: list[int]) -> None:
    for pid in pids:
        os.waitpid(pid, 0)


def went(results: int, timeout: float) -> bytes:
    """What the children wrote to ``results`` within ``timeout`` s (b"" if nothing)."""
    readable, _, _ = select.select([results], [], [], timeout)
    return os.read(results, 64) if readable else b""


def ready_worker(gate: StartGate, results: int) -> Callable[[], None]:
    """A worker that gets ready at once, then writes b"a" to ``results`` on go."""
    def body() -> None:
        gate.worker_side()
        gate.wait_for_go(timeout=30)
        os.write(results, b"a")
    return body


def stuck_worker(gate: StartGate, hold: int) -> Callable[[], None]:
    """A worker that never gets ready (it waits on ``hold`` until the test ends)."""
    def body() -> None:
        gate.worker_side()
        os.read(hold, 1)
    return body


def test_no_worker_goes_before_all_are_ready_then_all_go() -> None:
    gate = StartGate()
    results_r, results_w = os.pipe()
    hold_r, hold_w = os.pipe()

    def worker(mark: bytes, held: bool) -> Callable[[], None]:
        def body() -> None:
            gate.worker_side()
            if held:
                os.read(hold_r, 1)  # not ready until the test says so
            gate.wait_for_go(timeout=30)
            os.write(results_w, mark)
        return body

    pids = [fork(worker(b"a", held=False)), fork(worker(b"b", held=True))]
    released: list[int] = []
    supervisor = threading.Thread(target=lambda: released.append(gate.release(2, timeout=30)))
    supervisor.start()
    try:
        # "a" is ready and waits: nothing goes while "b" is not ready.
        assert went(results_r, 0.3) == b""
        os.write(hold_w, b".")
        got = b""
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            got += went(results_r, deadline - time.monotonic())
        assert sorted(got) == sorted(b"ab")
    finally:
        os.write(hold_w, b".")
        supervisor.join(10)
        reap(pids)
    assert released == [2]


def test_a_worker_that_never_gets_ready_holds_the_others_back_only_so_long() -> None:
    gate = StartGate()
    results_r, results_w = os.pipe()
    hold_r, hold_w = os.pipe()

    pids = [fork(ready_worker(gate, results_w)), fork(stuck_worker(gate, hold_r))]
    try:
        t0 = time.monotonic()
        assert gate.release(2, timeout=0.3) == 1
        assert time.monotonic() - t0 >= 0.3
        assert went(results_r, 10) == b"a"
    finally:
        os.write(hold_w, b".")
        reap(pids)


def test_a_signal_lets_the_ready_workers_go_at_once() -> None:
    gate = StartGate()
    results_r, results_w = os.pipe()
    wake_r, wake_w = os.pipe()
    hold_r, hold_w = os.pipe()

    pids = [fork(ready_worker(gate, results_w)), fork(stuck_worker(gate, hold_r))]
    try:
        os.write(wake_w, b"\x0f")  # what signal.set_wakeup_fd writes on SIGTERM
        t0 = time.monotonic()
        gate.release(2, wakeup_fd=wake_r, timeout=30)
        assert time.monotonic() - t0 < 5
        assert went(results_r, 10) == b"a"
    finally:
        os.write(hold_w, b".")
        reap(pids)
