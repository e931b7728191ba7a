"""A small threaded TCP proxy on 127.0.0.1 that breaks the network on demand.

Roadie processes connect to Redis through it; the test then, at runtime:

* ``cut()``      closes every connection and refuses new ones (the port is closed);
* ``stall()``    keeps connections open but forwards nothing, either way;
* ``delay(ms)``  waits ``ms`` milliseconds before forwarding each chunk;
* ``restore()``  back to a plain, fast pipe (the same port).

Two threads per connection pump bytes, one each way. Good for tests, not for speed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

CHUNK = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._flow = threading.Condition(self._lock)
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._port = 0
        self._stalled = False
        self._delay_s = 0.0
        self._closed = False
        self.accepted = 0
        self.forwarded = 0  # bytes, both ways

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._listen()
        return self

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._port}/0"

    def close(self) -> None:
        with self._flow:
            self._closed = True
            self._stalled = False
            self._flow.notify_all()
        self._close_listener()
        self._drop_all()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- faults ------------------------------------------------------------------
    def cut(self) -> None:
        """Close all connections and refuse new ones until ``restore()``."""
        self._close_listener()
        self._drop_all()

    def stall(self) -> None:
        """Keep connections open; forward nothing until ``restore()``."""
        with self._flow:
            self._stalled = True

    def delay(self, ms: float) -> None:
        """Add ``ms`` milliseconds before forwarding each chunk."""
        with self._flow:
            self._delay_s = ms / 1000.0

    def restore(self) -> None:
        with self._flow:
            self._stalled = False
            self._delay_s = 0.0
            self._flow.notify_all()
        if self._listener is None and not self._closed:
            self._listen()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._conns)

    # --- internals ---------------------------------------------------------------
    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), name="proxy-accept",
                         daemon=True).start()

    def _close_listener(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            # shutdown() wakes the accept() blocked in the other thread.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _drop_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, set()
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed: cut() or close()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    client.close()
                    upstream.close()
                    continue
                self._conns |= {client, upstream}
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), name="proxy-pump",
                                 daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    break
                with self._flow:
                    while self._stalled and not self._closed:
                        self._flow.wait()
                    delay = self._delay_s
                if delay:
                    time.sleep(delay)
                with self._lock:
                    if src not in self._conns:
                        break  # cut while we held the chunk: it is dropped
                dst.sendall(data)
                with self._lock:
                    self.forwarded += len(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
