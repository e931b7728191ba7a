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

from typing import Any

import orjson

from roadie import payload as pl
from roadie.config import Config
from roadie.connection import Redis, connect
from roadie.keys import Keys


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
    if value is None or isinstance(value, bool):
        return default
    try:
        return float(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError):
        return default


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


def epoch(value: Any) -> float | None:
    """A time from a payload or hash: float seconds or Sidekiq 8 integer ms."""
    return pl.epoch_seconds(value)


def glob_escape(text_: str) -> str:
    """Escape Redis glob characters so ``text_`` matches only itself."""
    out = []
    for ch in text_:
        if ch in "*?[]\\":
            out.append("\\")
        out.append(ch)
    return "".join(out)
