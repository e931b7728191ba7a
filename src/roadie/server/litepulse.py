"""The liveness pulse for a plain Redis (TCP or Unix socket, no TLS, no Sentinel).

``heartbeat.Pulse`` runs this file as ``python -I -S litepulse.py``. It imports the
standard library only: about 15 ms of CPU and 8 MB to start, where the redis-py
pulse (``heartbeat.pulse_main``, used for TLS and Sentinel URLs) needs about 0.15 s
and 30 MB. Every worker process has one, and it starts when the worker does, next
to the first jobs.

Its settings arrive as one JSON line on stdin, which stays open: EOF means the
parent stopped it or died (even with -9). It then exits. While the parent lives it
sets the liveness key every ``interval_s`` seconds, reconnecting after any error.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, BinaryIO


def command(*parts: str | bytes | int) -> bytes:
    """One command in RESP, Redis's request format."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Link:
    """One connection, opened on first use; every reply must be a simple ``+OK``."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.sock: socket.socket | None = None
        self.reader: BinaryIO | None = None

    def call(self, request: bytes) -> None:
        if self.sock is None:
            self._open()
        assert self.sock is not None and self.reader is not None
        self.sock.sendall(request)
        reply = self.reader.readline()
        if not reply.startswith(b"+"):
            raise ConnectionError(reply[:200].decode("utf-8", "replace") or "connection closed")

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


def serve(start: Callable[[dict[str, Any]], Callable[[], None]]) -> None:
    """A pulse's life, whichever client it uses: read the settings from stdin, then
    call ``start(settings)``'s beat every ``interval_s`` while the parent lives.

    A beat handles its own errors (Redis away: the parent's heartbeat reports it; the
    next beat tries again). Returns on EOF (the parent stopped us, or died).
    """
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGTSTP, signal.SIGTTIN):
        signal.signal(sig, signal.SIG_IGN)
    stdin = sys.stdin.buffer
    line = stdin.readline()
    if not line:
        return
    settings = json.loads(line)
    beat = start(settings)
    parent, interval = settings["parent"], float(settings["interval_s"])
    fd = stdin.fileno()
    while os.getppid() == parent:
        beat()
        readable, _, _ = select.select([fd], [], [], interval)
        if readable and not os.read(fd, 4096):
            return


def lite_beat(settings: dict[str, Any]) -> Callable[[], None]:
    link = Link(settings)
    request = command("SET", settings["key"], "1", "PX", settings["ttl_ms"])

    def beat() -> None:
        try:
            link.call(request)
        except OSError:  # ConnectionError too: reconnect next time
            link.close()

    return beat


def main() -> None:
    os.nice(10)
    serve(lite_beat)


if __name__ == "__main__":
    main()
