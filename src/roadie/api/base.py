"""What every API object shares: a Redis client, the key names, small readers.

An API object is built from a ``Config`` (it connects on its own), or from a
Redis client and ``Keys`` when the caller already holds a connection (a web app
sharing one pool between many pages)::

    Stats(config)
    Stats(redis=client, keys=Keys("myapp"))

Values in Redis were written by roadie or by any Sidekiq version, so readers here
accept both float seconds and Sidekiq 8's integer milliseconds, JSON strings or
objects, and missing fields.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from roadie import payload as pl
from roadie.config import Config
from roadie.keys import Keys
from roadie.redis.connection import Redis, connect


class ApiBase:
    """Holds ``config``, ``redis`` (raw bytes replies) and ``keys``."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        redis: Redis | None = None,
        keys: Keys | None = None,
    ) -> None:
        if config is None:
            if redis is None:
                from roadie.config import load

                config = load()
            else:
                config = Config(namespace=keys.namespace if keys is not None else "")
        if keys is None:
            keys = Keys(config.namespace)
        elif keys.namespace != config.namespace:
            # The keys the caller gave win; the config must agree for any push we make.
            config = config.replace(namespace=keys.namespace)
        self.config = config
        self.keys = keys
        self.redis: Redis = redis if redis is not None else connect(config)

    def _share(self) -> dict[str, Any]:
        """Arguments that build another API object on the same connection."""
        return {"redis": self.redis, "keys": self.keys}


def text(value: Any) -> str:
    """A Redis reply (bytes, str or None) as text."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def to_int(value: Any, default: int = 0) -> int:
    if value is None or isinstance(value, bool):
        return default
    try:
        return int(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError):
        try:
            return int(float(value.decode() if isinstance(value, bytes) else value))
        except (TypeError, ValueError, OverflowError):
            return default


def to_float(value: Any, default: float = 0.0) -> float:
    """A finite float, else ``default`` (``inf`` and ``nan`` have no place in JSON)."""
    if value is None or isinstance(value, bool):
        return default
    try:
        number = float(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError, OverflowError):
        return default
    return number if math.isfinite(number) else default


def as_bytes(raw: bytes | str) -> bytes:
    return raw.encode() if isinstance(raw, str) else bytes(raw)


def parse_object(raw: bytes | str | None) -> dict[str, Any] | None:
    """A JSON object from Redis, or None when the value is not one."""
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


#: The times ``datetime`` can show (years 1 to 9999), as epoch seconds.
EARLIEST_S = -62135596800.0
LATEST_S = 253402300799.0


def showable_time(seconds: float) -> bool:
    """Whether ``seconds`` is a time a person can be shown (finite, years 1 to 9999).

    A score or payload time outside it (Sidekiq's, or a hostile writer's ``1e300``)
    is not a time: the readers here give None for it rather than fail a page later.
    """
    return EARLIEST_S <= seconds <= LATEST_S  # False for nan as well


def epoch(value: Any) -> float | None:
    """A time from a payload or hash: float seconds or Sidekiq 8 integer ms.

    None when absent, or not a showable time (see ``showable_time``).
    """
    seconds = pl.epoch_seconds(value)
    return seconds if seconds is not None and showable_time(seconds) else None


def time_marker(value: Any) -> str:
    """How a page shows a stored time that is not one: ``invalid time 1e+300``."""
    if isinstance(value, str):
        shown = orjson.dumps(value[:40] + ("..." if len(value) > 40 else "")).decode()
    elif isinstance(value, float | int) and not isinstance(value, bool):
        shown = repr(value)
    else:
        try:
            shown = orjson.dumps(value).decode()
        except TypeError:
            shown = repr(value)
        shown = shown[:40] + ("..." if len(shown) > 40 else "")
    return f"invalid time {shown}"


def glob_escape(text_: str) -> str:
    """Escape Redis glob characters so ``text_`` matches only itself."""
    out = []
    for ch in text_:
        if ch in "*?[]\\":
            out.append("\\")
        out.append(ch)
    return "".join(out)
