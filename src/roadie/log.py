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

import logging
import os
import sys
import threading
import time
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


def _tid(record: logging.LogRecord, ctx: dict[str, Any]) -> str:
    # A job run as a task of the event loop names its processor's tid in its context.
    given = ctx.get("tid")
    return given if isinstance(given, str) else tid(_native(record))


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + (
        f".{int(created * 1000) % 1000:03d}Z"
    )


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx: dict[str, Any] = getattr(record, "roadie", None) or {}
        parts = [_timestamp(record.created), f"pid={os.getpid()}", f"tid={_tid(record, ctx)}"]
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
            "pid": os.getpid(),
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


def setup(level: str = "INFO", fmt: str = "plain", stream: TextIO | None = None) -> None:
    """Give the ``roadie`` logger one handler (used by ``roadie run`` only)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JSONFormatter() if fmt == "json" else PlainFormatter())
    for old in list(log.handlers):
        log.removeHandler(old)
    log.addHandler(handler)
    log.setLevel(level.upper())
    log.propagate = False
