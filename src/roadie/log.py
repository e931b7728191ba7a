"""The ``roadie`` logger and its two formats.

Library code only ever logs to ``logging.getLogger("roadie")``; the root logger
of the user's app is never touched. ``roadie run`` attaches one handler to the
``roadie`` logger, in the plain (default) or JSON format::

    2026-11-28T12:31:00.146Z pid=9613 tid=6hp class=WelcomeEmail jid=5735... INFO: start
    {"ts":"2026-11-28T12:31:00.146Z","pid":9613,"tid":"6hp","lvl":"INFO","msg":"start","ctx":{...}}

Job context (class, jid, elapsed...) travels in the record's ``roadie`` attribute:
``log.info("done", extra={"roadie": {"class": ..., "jid": ...}})``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from typing import Any, TextIO

import orjson

log = logging.getLogger("roadie")

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def tid(native_id: int | None = None) -> str:
    """A short per-thread id, base36 of (OS thread id XOR pid), like Sidekiq's ``tid``."""
    n = (threading.get_native_id() if native_id is None else native_id) ^ os.getpid()
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if n == 0:
            return out


def _native(record: logging.LogRecord) -> int | None:
    # LogRecord.thread is the Python ident; map the current thread to its OS id.
    if record.thread == threading.get_ident():
        return threading.get_native_id()
    return record.thread


#: tid by OS thread id, for this process (emptied in a forked child).
_TIDS: dict[int, str] = {}


def _tid(record: logging.LogRecord, ctx: dict[str, Any]) -> str:
    # A job run as a task of the event loop names its processor's tid in its context.
    given = ctx.get("tid")
    if isinstance(given, str):
        return given
    native = _native(record)
    if native is None:  # no thread in the record (logging.logThreads off): this one's
        return tid()
    known = _TIDS.get(native)
    if known is None:
        known = _TIDS[native] = tid(native)
    return known


def _pid(record: logging.LogRecord) -> int:
    return record.process if record.process is not None else os.getpid()


_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    # The date and time to the second change once a second: formatted then only.
    global _second
    whole = int(created)
    at, text = _second
    if at != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, text)
    return f"{text}.{int(created * 1000) % 1000:03d}Z"


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx: dict[str, Any] = getattr(record, "roadie", None) or {}
        parts = [_timestamp(record.created), f"pid={_pid(record)}", f"tid={_tid(record, ctx)}"]
        parts += [f"{k}={v}" for k, v in ctx.items() if v is not None and k != "tid"]
        line = " ".join(parts) + f" {record.levelname}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx: dict[str, Any] = dict(getattr(record, "roadie", None) or {})
        obj: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "pid": _pid(record),
            "tid": _tid(record, ctx),
            "lvl": record.levelname,
            "msg": record.getMessage(),
        }
        ctx.pop("tid", None)
        if ctx:
            obj["ctx"] = ctx
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(obj, default=str).decode()


class LineWriter(logging.Handler):
    """A handler that many threads can log to at once: each formats its own record;
    the thread that finds the stream free writes every line waiting, with one write
    and one flush, and the others go on at once.

    ``logging.StreamHandler`` writes and flushes each record under a lock, and its
    write lets go of the GIL: 100 processor threads logging ``start`` and ``done``
    queued on that lock (2,000 jobs of 10 ms at ``-c 100``: 0.49-0.54 s at INFO,
    0.30-0.32 s with this handler, 0.22 s at WARNING; docs/performance.md, "Eighth
    pass"). Lines keep the order they were logged in; a process killed with -9 may
    lose the lines of the write under way, as with any buffered stream.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._pending: deque[str] = deque()
        self._writing = threading.Lock()
        _WRITERS.add(self)

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler-wide lock: ``emit`` is safe from any number of threads.
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record))
            self._write()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Write every line waiting, after the write under way in another thread."""
        with self._writing:
            self._drain()
        self._write()

    def _write(self) -> None:
        # A thread that appended while another one wrote finds the lock taken and
        # leaves; the writer looks again after letting go, so no line is left behind.
        while self._pending and self._writing.acquire(blocking=False):
            try:
                self._drain()
            finally:
                self._writing.release()

    def _drain(self) -> None:
        lines = []
        pending = self._pending
        while pending:
            lines.append(pending.popleft())
        if lines:
            lines.append("")
            self.stream.write("\n".join(lines))
            self.stream.flush()

    def _after_fork(self) -> None:
        # The parent's writing thread does not exist here, and the parent writes
        # its own pending lines.
        self._pending = deque()
        self._writing = threading.Lock()


_WRITERS: weakref.WeakSet[LineWriter] = weakref.WeakSet()


def _reinit_writers() -> None:
    _TIDS.clear()
    for writer in list(_WRITERS):
        writer._after_fork()


os.register_at_fork(after_in_child=_reinit_writers)


def flush() -> None:
    """Write what the ``roadie`` logger's handlers hold (before ``os._exit``)."""
    for handler in list(log.handlers):
        # A broken stream: nothing more can be done about it here.
        with contextlib.suppress(Exception):
            handler.flush()


def setup(level: str = "INFO", fmt: str = "plain", stream: TextIO | None = None) -> None:
    """Give the ``roadie`` logger one handler (used by ``roadie run`` only)."""
    handler = LineWriter(stream or sys.stdout)
    handler.setFormatter(JSONFormatter() if fmt == "json" else PlainFormatter())
    for old in list(log.handlers):
        log.removeHandler(old)
    log.addHandler(handler)
    log.setLevel(level.upper())
    log.propagate = False
