"""Configuration: one frozen ``Config``, built from CLI > environment > file > defaults.

Environment variables are ``ROADIE_<FIELD>`` (``ROADIE_CONCURRENCY=20``), plus
``REDIS_URL`` (and ``REDIS_PROVIDER``, which names the variable holding the URL,
as in Sidekiq). The file is TOML (``roadie.toml`` in the working directory, or
``--config PATH``), with the field names as keys, at the top level or under
``[roadie]``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roadie.errors import ConfigError
from roadie.schedule import Schedule, from_table
from roadie.speedups import parse_off as parse_speedups_off

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_CONFIG_FILE = "roadie.toml"

QueueSpec = tuple[str, int]


#: Values of ``event_loop``.
EVENT_LOOPS = ("auto", "uvloop", "asyncio")

#: Longest a processor's blocking fetch (BLMOVE) waits, so that a quiet or stop is
#: noticed quickly; the socket timeout of ``roadie run`` must exceed it.
BLOCK_TIMEOUT_S = 2.0

#: Shortest interval of the heartbeat, the poller and the janitor: at most 20 rounds
#: a second (0 made an idle process send thousands of commands a second).
MIN_INTERVAL_S = 0.05
#: Longest of those intervals, and of the Redis timeouts: an hour.
MAX_INTERVAL_S = 3600.0
#: The heartbeat refreshes the Sidekiq process hash, whose TTL is 60 s
#: (``server.heartbeat.PROCESS_HASH_TTL_S``): it must beat at least twice in that time.
MAX_HEARTBEAT_INTERVAL_S = 30.0
#: The liveness key outlives one late beat: TTL >= 2 x interval and interval + this.
TTL_MARGIN_S = 1.0


def min_process_ttl_s(heartbeat_interval_s: float) -> float:
    """Shortest ``process_ttl_s`` for a heartbeat interval: a live process whose beat
    comes late once (a slow Redis, a GC pause) must not look dead."""
    return max(2 * heartbeat_interval_s, heartbeat_interval_s + TTL_MARGIN_S)


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a roadie client or process needs to know."""

    redis_url: str = DEFAULT_REDIS_URL
    #: False when nobody set a URL; the process then says loudly which one it uses.
    redis_url_configured: bool = False
    namespace: str = ""
    queues: tuple[QueueSpec, ...] = (("default", 0),)
    concurrency: int = 10
    #: Worker processes under one supervisor (``-P``); 1 runs no supervisor.
    processes: int = 1
    #: With a supervisor: a worker whose RSS exceeds this many MB is replaced; 0: no limit.
    max_memory_mb: int = 0
    timeout_s: float = 25.0
    require: tuple[str, ...] = ()
    tag: str = ""
    labels: tuple[str, ...] = ()
    log_level: str = "INFO"
    log_format: str = "plain"
    #: Event loop for ``async def perform``: "auto" (uvloop when installed), "uvloop"
    #: or "asyncio".
    event_loop: str = "auto"
    max_retries: int = 25
    dead_max_jobs: int = 10_000
    dead_timeout_s: float = 180 * 24 * 3600.0
    heartbeat_interval_s: float = 5.0
    #: Average seconds between scheduled/retry polls across the whole cluster.
    poll_interval_average_s: float = 5.0
    #: If set, every process polls at this average, not scaled by process count.
    poll_interval_fixed_s: float | None = None
    #: A process whose liveness key is this old is dead: its jobs are recovered.
    process_ttl_s: float = 15.0
    janitor_interval_s: float = 5.0
    #: A job in flight at this many process deaths in a row goes to the dead set.
    max_crashes: int = 3
    socket_timeout_s: float = 5.0
    connect_timeout_s: float = 3.0
    #: Speed mechanisms turned off (``roadie.speedups``; ``all`` for every one): for
    #: narrowing a problem down to one of them, never needed for correctness.
    speedups_off: tuple[str, ...] = ()
    #: Periodic jobs of the config file (``[[roadie.periodic]]`` tables).
    periodic: tuple[Schedule, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    #: Where each setting was given, as the user wrote it ("environment variable
    #: ROADIE_CONCURRENCY", "-c/--concurrency", a file's path): error messages name it.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def speedup(self, name: str) -> bool:
        """Whether the speed mechanism ``name`` (``roadie.speedups``) is on."""
        return name not in self.speedups_off

    def __post_init__(self) -> None:
        object.__setattr__(self, "speedups_off", parse_speedups_off(self.speedups_off))
        for name, (low, high, unit) in _RANGES.items():
            self._check_range(name, low, high, unit)
        if self.poll_interval_fixed_s is not None:
            self._check_range("poll_interval_fixed_s", MIN_INTERVAL_S, MAX_INTERVAL_S, "s")
        if not self.queues:
            raise ConfigError("at least one queue is needed")
        if self.log_format not in ("plain", "json"):
            raise ConfigError(f"log_format must be 'plain' or 'json', got {self.log_format!r}")
        if self.event_loop not in EVENT_LOOPS:
            raise ConfigError(
                f"event_loop must be 'auto', 'uvloop' or 'asyncio', got {self.event_loop!r}"
            )
        if self.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ConfigError("event_loop is 'uvloop' but uvloop is not installed: "
                              "pip install uvloop (Linux and macOS), or set event_loop = 'auto'")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(
                f"log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {self.log_level!r}"
            )
        shortest_ttl_s = min_process_ttl_s(self.heartbeat_interval_s)
        if self.process_ttl_s < shortest_ttl_s:
            raise ConfigError(
                f"process_ttl_s must be at least twice heartbeat_interval_s and "
                f"{TTL_MARGIN_S:g} s longer than it ({shortest_ttl_s:g} with "
                f"heartbeat_interval_s {self.heartbeat_interval_s:g}"
                f"{self.origin('heartbeat_interval_s')}), got {self.process_ttl_s:g}"
                f"{self.origin('process_ttl_s')}: otherwise one late beat makes a live "
                "process look dead, and another process recovers (runs again) its jobs"
            )

    def origin(self, name: str) -> str:
        """`` (from <where the user wrote it>)``, or nothing for a default/direct value."""
        where = self.sources.get(name)
        return f" (from {where})" if where else ""

    def _check_range(self, name: str, low: float, high: float | None, unit: str) -> None:
        value = getattr(self, name)
        # NaN fails every comparison: test for being inside the range, not outside.
        inside = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            math.isfinite(value) and value >= low and (high is None or value <= high)
        )
        if inside:
            return
        if unit == "s":
            rule = f"a number of seconds from {low:g} to {high:g}"
        elif high is None:
            rule = f"at least {low:g}"
        else:
            rule = f"from {low:g} to {high:g}"
        shown = f"{value:g}" if isinstance(value, float) else repr(value)
        raise ConfigError(
            f"{name} must be {rule}{_WHY.get(name, '')}, got {shown}{self.origin(name)}"
        )

    def label(self, name: str) -> str:
        """A setting as the user wrote it: ``-c/--concurrency``, ``ROADIE_CONCURRENCY``..."""
        where = self.sources.get(name, "")
        if where.startswith("environment variable "):
            return where.removeprefix("environment variable ")
        if where.startswith("-"):  # a flag
            return where
        if where and where != "the command line":  # a file
            return f"{name} in {where}"
        return name

    @property
    def strict(self) -> bool:
        """Strict queue order unless some queue has a weight (Sidekiq's rule)."""
        return all(w == 0 for _, w in self.queues)

    @property
    def queue_names(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for name, _ in self.queues:
            seen.setdefault(name, None)
        return tuple(seen)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def parse_queue(spec: str | Iterable[Any]) -> QueueSpec:
    """``"critical,2"`` or ``["critical", 2]`` -> ``("critical", 2)``."""
    if isinstance(spec, str):
        name, _, weight = spec.strip().partition(",")
    else:
        if not isinstance(spec, (list, tuple)):
            raise ConfigError(
                f"queue spec must be a string such as 'critical,2' or a list "
                f"[name, weight], got {spec!r}"
            )
        parts = list(spec)
        if not 1 <= len(parts) <= 2:
            raise ConfigError(f"queue spec must be [name] or [name, weight], got {parts!r}")
        name = str(parts[0])
        weight = str(parts[1]) if len(parts) == 2 else ""
    name = name.strip()
    if not name:
        raise ConfigError(f"queue spec {spec!r} has no queue name")
    if not weight.strip():
        return (name, 0)
    try:
        w = int(weight)
    except ValueError:
        raise ConfigError(
            f"queue weight in {spec!r} must be an integer (as in 'critical,2')"
        ) from None
    if w < 0:
        raise ConfigError(f"queue weight in {spec!r} must not be negative")
    return (name, w)


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
_INT = {"concurrency", "processes", "max_memory_mb", "max_retries", "dead_max_jobs",
        "max_crashes"}
_FLOAT = {
    "timeout_s", "dead_timeout_s", "heartbeat_interval_s", "poll_interval_average_s",
    "poll_interval_fixed_s", "process_ttl_s", "janitor_interval_s", "socket_timeout_s",
    "connect_timeout_s",
}
_LIST = {"require", "labels", "speedups_off"}

#: Allowed range of each number: (lowest, highest or None, "s" for a duration).
_RANGES: dict[str, tuple[float, float | None, str]] = {
    "concurrency": (1, None, ""),
    "processes": (1, None, ""),
    "max_memory_mb": (0, None, ""),
    "max_retries": (0, None, ""),
    "dead_max_jobs": (1, None, ""),
    "max_crashes": (1, None, ""),
    "timeout_s": (0, 24 * 3600.0, "s"),
    "dead_timeout_s": (1, 100 * 365 * 24 * 3600.0, "s"),
    "heartbeat_interval_s": (MIN_INTERVAL_S, MAX_HEARTBEAT_INTERVAL_S, "s"),
    "poll_interval_average_s": (MIN_INTERVAL_S, MAX_INTERVAL_S, "s"),
    "process_ttl_s": (MIN_INTERVAL_S, MAX_INTERVAL_S, "s"),
    "janitor_interval_s": (MIN_INTERVAL_S, MAX_INTERVAL_S, "s"),
    "socket_timeout_s": (0.01, MAX_INTERVAL_S, "s"),
    "connect_timeout_s": (0.01, MAX_INTERVAL_S, "s"),
}
#: Why a range is what it is, where that is not obvious.
_WHY = {
    "heartbeat_interval_s": " (the process hash it refreshes expires after 60 s)",
    "max_memory_mb": " (a number of MB, or 0 for no limit)",
    "dead_max_jobs": " (to keep no dead job, give the job retry=False or dead=False)",
    "timeout_s": " (0: push running jobs back at once)",
}


#: Fields that no file, variable or flag sets.
_INTERNAL = ("extra", "redis_url_configured", "sources")


def coerce_setting(name: str, value: Any, source: str) -> Any:
    """``value`` as setting ``name`` holds it; ``ConfigError`` names ``source`` if it
    cannot be (the framework integrations' settings use it too)."""
    if name not in _FIELDS or name in _INTERNAL:
        raise ConfigError(f"unknown setting {name!r} in {source}")
    if name == "periodic":
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"periodic jobs in {source} must be [[roadie.periodic]] tables")
        return tuple(v if isinstance(v, Schedule) else from_table(v, source) for v in value)
    try:
        # int(2.5) would silently truncate, int(inf) raises OverflowError, and
        # int(True)/float(False) would turn a TOML bool into a number.
        if (name in _INT or name in _FLOAT) and isinstance(value, bool):
            raise ValueError(value)
        if name in _INT and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        if name in _INT:
            return int(value)
        if name in _FLOAT:
            # Only an optional setting may be left empty; "" elsewhere is an error.
            if value in (None, "") and name == "poll_interval_fixed_s":
                return None
            number = float(value)
            if math.isfinite(number):
                return number
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r} in {source} must be a number, got {value!r}") from None
    if name in _FLOAT:  # "nan", "inf": no time or interval is that
        raise ConfigError(f"setting {name!r} in {source} must be a finite number, got {value!r}")
    if (name == "queues" or name in _LIST) and not isinstance(value, (str, list, tuple)):
        raise ConfigError(
            f"setting {name!r} in {source} must be a list of strings (or one string "
            f"separated by spaces), got {value!r}"
        )
    if name == "queues":
        items = value.split() if isinstance(value, str) else list(value)
        return tuple(parse_queue(q) for q in items)
    if name in _LIST:
        if isinstance(value, str):
            return tuple(v for v in value.replace(",", " ").split() if v)
        return tuple(str(v) for v in value)
    return str(value)


def read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    section = data.get("roadie", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {p}: [roadie] must be a table")
    if section is not data and "periodic" in data:
        # [[periodic]] tables at the top level of a file that also has [roadie].
        top, inner = data["periodic"], section.get("periodic", [])
        if isinstance(top, list) and isinstance(inner, list):
            section = {**section, "periodic": [*top, *inner]}
        else:
            raise ConfigError(f"config file {p}: periodic jobs must be [[periodic]] tables")
    return {k: coerce_setting(k, v, str(p)) for k, v in section.items()}


def read_env(env: Mapping[str, str]) -> dict[str, Any]:
    return _read_env(env)[0]


def _read_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings of ``env``, and the variable each came from."""
    out: dict[str, Any] = {}
    sources: dict[str, str] = {}
    provider = env.get("REDIS_PROVIDER")
    if provider and env.get(provider):
        out["redis_url"] = env[provider]
        sources["redis_url"] = f"environment variable {provider}"
    elif env.get("REDIS_URL"):
        out["redis_url"] = env["REDIS_URL"]
        sources["redis_url"] = "environment variable REDIS_URL"
    for key, value in env.items():
        if not key.startswith("ROADIE_") or key in ("ROADIE_CONFIG",):
            continue
        name = key[len("ROADIE_"):].lower()
        if name in _FIELDS and name not in _INTERNAL:
            out[name] = coerce_setting(name, value, f"environment variable {key}")
            sources[name] = f"environment variable {key}"
    return out, sources


def load(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    cli_flags: Mapping[str, str] | None = None,
) -> Config:
    """Merge defaults < file < environment < CLI into a ``Config``.

    ``cli_flags`` names the flag of each ``cli`` setting (``{"concurrency":
    "-c/--concurrency"}``), for the error messages.
    """
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = config_file or env.get("ROADIE_CONFIG")
    if not path and Path(DEFAULT_CONFIG_FILE).is_file():
        path = DEFAULT_CONFIG_FILE
    if path:
        from_file = read_file(path)
        merged.update(from_file)
        sources.update(dict.fromkeys(from_file, str(path)))
    from_env, env_sources = _read_env(env)
    merged.update(from_env)
    sources.update(env_sources)
    for k, v in (cli or {}).items():
        if v is not None:
            flag = (cli_flags or {}).get(k)
            where = flag or "the command line"
            merged[k] = coerce_setting(k, v, where) if not isinstance(v, tuple) else v
            sources[k] = where
    if "redis_url" in merged:
        merged["redis_url_configured"] = True
    try:
        return Config(**merged, sources=sources)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
