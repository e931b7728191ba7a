"""The liveness pulse for a plain Redis (TCP or Unix socket, no TLS, no Sentinel).

``pulse.child.Pulse`` runs this file as ``python -I -S lite.py``. It imports the
standard library only: about 15 ms of CPU and 8 MB to start, where the redis-py
pulse (``pulse.child.pulse_main``, used for TLS and Sentinel URLs) needs about 0.15 s
and 30 MB. Every worker process has one, and it starts when the worker does, next
to the first jobs. ``serve`` (the pulse's life) is shared by both.

Its settings arrive as one JSON line on stdin, which stays open. While the parent
lives the pulse refreshes the liveness key every ``interval_s`` seconds,
reconnecting after any error. Then:

* the parent writes ``{"stop": "clean"}`` and closes the pipe: a clean stop. The
  pulse exits and writes nothing.
* EOF without that line: the parent died (the kernel closes the pipe even after
  -9). Before it exits, the pulse writes the *death record*: the jobs the parent
  was running, read from memory the two share (``running_fd``: one slot per
  processor, see ``state.RunningSlots``), to ``record_key``; then it deletes the
  liveness key, since nobody will run those jobs now. The janitor counts a crash
  only for the jobs listed there (the crash-loop rule).
* the parent's stop takes too long: the parent's signal wakeup fd writes the number
  of each signal it gets into ``signal_fd`` (in C, even while a job holds the GIL),
  and the parent sends ``{"stopping_s": ...}`` when its stop begins. A process
  still alive ``timeout_s`` + ``KILL_GRACE_S`` after the first TERM/INT (or
  ``KILL_GRACE_S`` after the second) is killed with SIGKILL, then reported as dead.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, BinaryIO

#: Bytes of one processor's slot in the shared memory: a length byte, then the mark
#: of the job it runs (its jid, see ``state.run_mark``); length 0: no job.
SLOT_SIZE = 64
#: After the stop's ``timeout_s`` (or after a second TERM/INT), how long the parent
#: has to push its jobs back and leave before its pulse kills it.
KILL_GRACE_S = 3.0
#: How long the pulse waits for a killed parent's pipe to close before reporting it.
KILLED_WAIT_S = 5.0
#: A TERM/INT this soon after the first is the same stop, delivered twice (a terminal
#: or systemd signals every process, and ``roadie run -P``'s supervisor forwards it
#: too), not a second one asking to stop at once.
SECOND_STOP_AFTER_S = 1.0
#: The signal ``roadie run -P``'s supervisor sends a worker over ``max_memory_mb``.
MEMORY_SIGNAL = signal.SIGUSR2
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: What a pulse client does: refresh the liveness key; write a death record.
Beat = Callable[[], None]
Report = Callable[[str], None]


def command(*parts: str | bytes | int) -> bytes:
    """One command in RESP, Redis's request format."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Link:
    """One connection, opened on first use; replies must be simple strings or
    integers (what ``SET``, ``PEXPIRE`` and ``DEL`` answer)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.sock: socket.socket | None = None
        self.reader: BinaryIO | None = None

    def call(self, request: bytes) -> bytes:
        """Send one command; its reply line (``+OK``, ``:1``). An error reply raises."""
        if self.sock is None:
            self._open()
        assert self.sock is not None and self.reader is not None
        self.sock.sendall(request)
        reply = self.reader.readline()
        if not reply.startswith((b"+", b":")):
            raise ConnectionError(reply[:200].decode("utf-8", "replace") or "connection closed")
        return reply.rstrip(b"\r\n")

    def _open(self) -> None:
        s = self.settings
        if s.get("path"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(s["connect_timeout_s"])
            try:
                sock.connect(s["path"])
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection((s["host"], s["port"]), s["connect_timeout_s"])
        sock.settimeout(s["socket_timeout_s"])
        self.sock, self.reader = sock, sock.makefile("rb")
        if s.get("password") is not None:
            user = s.get("username")
            self.call(command("AUTH", user, s["password"]) if user else
                      command("AUTH", s["password"]))
        if s.get("db"):
            self.call(command("SELECT", s["db"]))

    def close(self) -> None:
        for part in (self.reader, self.sock):
            if part is not None:
                with contextlib.suppress(OSError):
                    part.close()
        self.sock = self.reader = None


def read_running(fd: int | None, size: int) -> list[str]:
    """The marks in the shared slots (``state.RunningSlots``): the jobs running now."""
    if fd is None or size <= 0:
        return []
    try:
        with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mm:
            data = bytes(mm)
    except (OSError, ValueError):
        return []
    marks = []
    for off in range(0, size - SLOT_SIZE + 1, SLOT_SIZE):
        n = data[off]
        if 0 < n < SLOT_SIZE:
            marks.append(data[off + 1:off + 1 + n].decode("latin-1"))
    return marks


class Watch:
    """What the pulse knows of its parent's end: a clean stop, a stop under way (and
    when to kill), why it died."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.timeout_s = float(settings.get("stop_timeout_s") or 0.0)
        self.max_memory_mb = settings.get("max_memory_mb")
        self.clean = False
        self.deadline: float | None = None
        self.stops = 0
        self.stop_began = 0.0
        self.reason = ""
        self._pending = b""

    def _stop(self, first_in_s: float) -> None:
        now = time.monotonic()
        if self.stops and now - self.stop_began < SECOND_STOP_AFTER_S:
            return  # the first stop again, delivered twice
        self.stops += 1
        wait_s = first_in_s if self.stops == 1 else KILL_GRACE_S
        if self.stops == 1:
            self.stop_began = now
        at = now + wait_s
        self.deadline = at if self.deadline is None else min(self.deadline, at)

    def signals(self, data: bytes) -> None:
        """Signal numbers written by the parent's wakeup fd."""
        for signum in data:
            if signum == MEMORY_SIGNAL:
                self.reason = (f"it was stopped for using more memory than max_memory_mb "
                               f"(--max-memory) {self.max_memory_mb} MB")
            if signum in STOP_SIGNALS or signum == MEMORY_SIGNAL:
                self._stop(self.timeout_s + KILL_GRACE_S)

    def lines(self, data: bytes) -> None:
        """Messages from the parent, one JSON object a line."""
        self._pending += data
        *complete, self._pending = self._pending.split(b"\n")
        for line in complete:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("stop") == "clean":
                self.clean = True
            stopping_s = message.get("stopping_s")
            if isinstance(stopping_s, (int, float)):
                if self.stops == 0:
                    self._stop(float(stopping_s))
                else:  # the signal told us already; a later stop message, no second stop
                    at = time.monotonic() + float(stopping_s)
                    self.deadline = at if self.deadline is None else min(self.deadline, at)


def serve(start: Callable[[dict[str, Any]], tuple[Beat, Report]]) -> None:
    """A pulse's life, whichever client it uses: read the settings from stdin, then
    call ``start(settings)``'s beat every ``interval_s`` while the parent lives; if
    it dies (or is killed at its stop deadline), report what it was running.

    A beat handles its own errors (Redis away: the parent's heartbeat reports it; the
    next beat tries again).
    """
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGTSTP, signal.SIGTTIN):
        signal.signal(sig, signal.SIG_IGN)
    stdin = sys.stdin.buffer
    line = stdin.readline()
    if not line:
        return
    settings = json.loads(line)
    beat, report = start(settings)
    parent, interval = settings["parent"], float(settings["interval_s"])
    fd = stdin.fileno()
    signal_fd: int | None = settings.get("signal_fd")
    watched = [fd] if signal_fd is None else [fd, signal_fd]
    watch = Watch(settings)
    next_beat = 0.0
    while os.getppid() == parent:
        now = time.monotonic()
        if now >= next_beat:
            beat()
            next_beat = now + interval
        if watch.deadline is not None and now >= watch.deadline:
            _kill(parent, fd, watch)
            break
        wake = next_beat if watch.deadline is None else min(next_beat, watch.deadline)
        readable, _, _ = select.select(watched, [], [], max(0.0, wake - now))
        if signal_fd is not None and signal_fd in readable:
            with contextlib.suppress(BlockingIOError):
                watch.signals(os.read(signal_fd, 512))
        if fd in readable:
            data = os.read(fd, 4096)
            if not data:
                break
            watch.lines(data)
    if watch.clean:
        return
    report(json.dumps({
        "running": read_running(settings.get("running_fd"), int(settings.get("running_size") or 0)),
        "reason": watch.reason or "it died (killed with -9, out of memory, or a crash in C code?)",
        "pid": parent,
        "at": time.time(),
    }))


def _kill(parent: int, fd: int, watch: Watch) -> None:
    """The parent outlived its stop deadline (a job holding the GIL, a stuck C call):
    kill it, and wait until it is gone (its pipe closes)."""
    took = time.monotonic() - watch.stop_began
    with contextlib.suppress(ProcessLookupError):
        os.kill(parent, signal.SIGKILL)
    why = (f"it was still running {took:.1f} s after its stop began (timeout_s "
           f"{watch.timeout_s:g} s; a job holding the GIL or stuck in C code?), so its "
           "pulse killed it")
    watch.reason = f"{watch.reason}; {why}" if watch.reason else why
    end = time.monotonic() + KILLED_WAIT_S
    while (left := end - time.monotonic()) > 0:
        readable, _, _ = select.select([fd], [], [], left)
        if readable and not os.read(fd, 4096):
            return


def lite_client(settings: dict[str, Any]) -> tuple[Beat, Report]:
    link = Link(settings)
    key, ttl_ms = settings["key"], settings["ttl_ms"]
    # PEXPIRE first: Redis over maxmemory (noeviction) refuses SET, which needs
    # memory, but not PEXPIRE. SET only when the key is missing (PEXPIRE answers 0).
    refresh = command("PEXPIRE", key, ttl_ms)
    create = command("SET", key, "1", "PX", ttl_ms)

    def beat() -> None:
        try:
            if link.call(refresh) == b":0":
                link.call(create)
        except OSError:  # ConnectionError too: reconnect next time
            link.close()

    def report(record: str) -> None:
        requests = [command("DEL", key)]
        if settings.get("record_key"):
            requests.insert(0, command("SET", settings["record_key"], record, "EX",
                                       settings["record_ttl_s"]))
        for request in requests:
            for _ in range(2):  # one reconnect: the connection may be stale
                try:
                    link.call(request)
                    break
                except OSError:
                    link.close()

    return beat, report


def main() -> None:
    os.nice(10)
    serve(lite_client)


if __name__ == "__main__":
    main()
