"""Start and end times of the I/O workload's sleeping jobs, written without a round
trip per job (standard library only: roadie's and the Python peers' workers use it).

The I/O workload measures first start to last end of 2,000 jobs that each sleep
10 ms. A job adds its "start end" string here; a daemon thread of the worker
process writes what has gathered with one ``RPUSH bench:io ...`` every 20 ms, where
the harness counts and reads them. A Redis call in each job would be measurement,
not workload: 65-95 µs of CPU per job, which on 2 cores bends the 100-executor
figures of every system.

The thread writes on a plain socket of its own to ``$BENCH_REDIS_URL``, opened when
it starts: a redis-py client opened its connection at the first write, 20-30 ms into
the run, and its handshake's round trips took the GIL from the jobs of every Python
system then (Sidekiq's writer uses a connection its pool already holds).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from urllib.parse import unquote, urlsplit

IO_KEY = "bench:io"
FLUSH_S = 0.02


def command(*parts: bytes) -> bytes:
    """One Redis command in RESP."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out += [b"$%d\r\n" % len(part), part, b"\r\n"]
    return b"".join(out)


class Connection:
    """A blocking RESP connection for simple replies (status, integer, error)."""

    def __init__(self, url: str) -> None:
        u = urlsplit(url)
        if u.scheme == "unix":
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(u.path)
            db = dict(p.split("=", 1) for p in u.query.split("&") if "=" in p).get("db", "0")
        elif u.scheme == "redis":
            self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379))
            db = u.path.lstrip("/") or "0"
        else:
            raise ValueError(f"spanlog: unsupported Redis URL {url!r} (redis:// or unix://)")
        self.file = self.sock.makefile("rb")
        if u.password:
            auth = [unquote(u.username or "default"), unquote(u.password)]
            self.call(b"AUTH", *(a.encode() for a in auth))
        if db != "0":
            self.call(b"SELECT", db.encode())

    def call(self, *parts: bytes) -> bytes:
        self.sock.sendall(command(*parts))
        line = self.file.readline()
        if not line or line[:1] == b"-":
            raise OSError(f"Redis replied {line.strip()!r}")
        return line.strip()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class SpanLog:
    """``add(started, ended)`` from any thread or coroutine; written every FLUSH_S."""

    def __init__(self, key: str = IO_KEY) -> None:
        self.key = key.encode()
        self.items: list[str] = []
        self.pid = 0  # the process whose thread writes (a forked worker starts its own)
        self.lock = threading.Lock()

    def add(self, started: float, ended: float) -> None:
        self.items.append(f"{started} {ended}")
        if self.pid != os.getpid():
            with self.lock:
                if self.pid != os.getpid():
                    self.pid = os.getpid()
                    threading.Thread(target=self._writer, name="bench.spanlog",
                                     daemon=True).start()

    def _writer(self) -> None:
        conn: Connection | None = None
        while True:
            try:
                if conn is None:
                    conn = Connection(os.environ["BENCH_REDIS_URL"])
            except OSError as exc:
                print(f"spanlog: cannot connect ({exc}); retrying", file=sys.stderr)
            time.sleep(FLUSH_S)
            n = len(self.items)
            if n and conn is not None:
                batch = self.items[:n]
                del self.items[:n]  # items appended meanwhile stay for the next write
                try:
                    conn.call(b"RPUSH", self.key, *(s.encode() for s in batch))
                except OSError as exc:  # keep them for the next write; say why
                    self.items[:0] = batch
                    conn.close()
                    conn = None
                    print(f"spanlog: RPUSH failed ({exc}); retrying", file=sys.stderr)
