"""Helpers shared by the integration tests (not a test module itself)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import redis

from roadie import aio
from roadie.config import Config
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.fetch import Fetcher
from roadie.server.launcher import Launcher
from roadie.server.outage import Outage
from roadie.server.processor import LoopThread, Processor
from roadie.server.state import State

IDENTITY = "testhost:4242:abcdefabcdef"
#: The in-flight list of the processors ``make_processor`` wires (identity ``IDENTITY``).
INFLIGHT = f"roadie:inflight:{IDENTITY}"


def loads(raw: bytes) -> dict[str, Any]:
    """Decode a payload keeping its key order (dicts preserve insertion order)."""
    value = json.loads(raw)
    assert isinstance(value, dict)
    return value


def compact(payload: dict[str, Any]) -> bytes:
    """What Ruby's JSON.generate would write for ``payload``."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()



# --- payloads as Sidekiq writes them (the roadie.api tests) ---------------------
# Captured from Sidekiq 6.4.1 (SIDEKIQ-WIRE.md 3.2): Ruby's key order and float digits.
RUBY_JOB = (
    '{"retry":true,"queue":"default","args":[1,"two",{"three":3.5},[true,null]],'
    '"class":"OkJob","jid":"89c26b0b73fc12cf89e5c357","created_at":1795869053.437359,'
    '"enqueued_at":1795869053.4375207}'
)
RUBY_RETRY = (
    '{"retry":2,"queue":"other","backtrace":3,"args":[7],"class":"FailJob",'
    '"jid":"573528414260915c54e46568","created_at":1795869059.9206307,'
    '"enqueued_at":1795869059.9208095,"error_message":"boom 7","error_class":"ArgumentError",'
    '"failed_at":1795869060.1465094,"retry_count":1,"retried_at":1795869090.5}'
)
# Sidekiq 8 (SIDEKIQ-WIRE.md 3.3): integer milliseconds.
SK8_RETRY = (
    '{"retry":true,"queue":"default","args":[1,"two"],"class":"HardJob",'
    '"jid":"b4a577edbccf1d805744efa9","created_at":1754000000123,"enqueued_at":1754000000125,'
    '"error_message":"boom","error_class":"RuntimeError","failed_at":1754000001010,'
    '"retry_count":0}'
)


def job_with_times(jid: str, at: Any) -> bytes:
    """A payload whose four times (enqueued, created, failed, retried) are all ``at``:
    the hostile-value tests write ones no writer should store."""
    return orjson.dumps({"class": "HostileJob", "args": [], "jid": jid, "queue": "default",
                         "enqueued_at": at, "created_at": at, "failed_at": at,
                         "retried_at": at})

# Commands a new connection sends before doing any work.
_HANDSHAKE = frozenset({"HELLO", "AUTH", "SELECT", "CLIENT"})


class CommandLog:
    """Records the commands Redis executes in one database, using MONITOR.

    ``commands()`` issues a unique ECHO and returns every command seen in the
    database since the log was opened, up to that marker: no sleeping involved.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.db = int(client.connection_pool.connection_kwargs.get("db", 0))
        self._monitor: Any = None

    def __enter__(self) -> CommandLog:
        self._monitor = self.client.monitor()
        self._monitor.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._monitor.__exit__(*exc)

    def commands(self) -> list[list[str]]:
        marker = f"roadie-test-marker-{os.urandom(6).hex()}"
        self.client.echo(marker)
        seen: list[list[str]] = []
        while True:
            entry = self._monitor.next_command()
            text = str(entry["command"])
            if marker in text:
                return seen
            words = text.split(" ", 2)
            words[0] = words[0].upper()
            if int(entry.get("db", -1)) == self.db and words[0] not in _HANDSHAKE:
                seen.append(words)


class LoopThreads:
    """Hands out one lazily-started ``LoopThread`` (as the launcher does)."""

    def __init__(self) -> None:
        self.loop_thread: LoopThread | None = None

    def __call__(self) -> LoopThread:
        if self.loop_thread is None:
            self.loop_thread = LoopThread()
        return self.loop_thread

    def stop(self) -> None:
        if self.loop_thread is not None:
            self.loop_thread.stop()
            self.loop_thread.thread.join(5)


def make_processor(
    r: redis.Redis,
    config: Config,
    registry: Registry,
    *,
    hooks: Hooks | None = None,
    loop_thread: Callable[[], LoopThread] | None = None,
    identity: str = IDENTITY,
) -> Processor:
    """A processor wired like the launcher wires one, but not started."""
    keys = Keys(config.namespace)
    return Processor(
        0,
        config=config,
        keys=keys,
        fetcher=Fetcher(r, config, keys, identity),
        state=State(identity),
        hooks=hooks or Hooks(),
        registry=registry,
        outage=Outage("redis://test"),
        loop_thread=loop_thread or LoopThreads(),
    )


@contextmanager
def started_processors(
    r: redis.Redis, config: Config, registry: Registry, loop_threads: Callable[[], LoopThread]
) -> Iterator[Callable[..., Processor]]:
    """A function that starts a processor thread (concurrency 1 unless told, optional
    hooks); every processor it started is quieted and joined at the end."""
    started: list[Processor] = []

    def make(hooks: Hooks | None = None, **changes: Any) -> Processor:
        proc = make_processor(r, config.replace(**{"concurrency": 1, **changes}), registry,
                              hooks=hooks, loop_thread=loop_threads)
        started.append(proc)
        proc.start()
        return proc

    try:
        yield make
    finally:
        for proc in started:
            proc.state.quiet.set()
            proc.thread.join(10)


def processors_exited(launcher: Launcher) -> bool:
    """Every processor thread of ``launcher`` has ended."""
    return all(not p.thread.is_alive() for p in launcher.manager.processors)


def run_aio(call: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run one roadie.aio call on a new event loop, closing its client after."""
    async def go() -> Any:
        try:
            return await call()
        finally:
            await aio.close()

    return asyncio.run(go())
