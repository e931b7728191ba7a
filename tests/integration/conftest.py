"""Fixtures shared by the integration tests of processors and launchers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from integration_support import LoopThreads, started_processors

import roadie.current
from roadie.client import Client
from roadie.config import Config
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.launcher import Launcher
from roadie.server.processor import Processor


@pytest.fixture
def registry() -> Registry:
    """A registry of the test's own (job classes defined in a test register here)."""
    return Registry()


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def client(config: Config, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The test's Redis as the default client (what perform_async pushes through)."""
    c = Client(config, hooks=Hooks())
    with roadie.current.using(c):
        yield c


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown at the latest, so no job thread outlives its test blocked."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def launch(
    config: Config, hooks: Hooks, registry: Registry
) -> Iterator[Callable[..., Launcher]]:
    """``launch(**settings)``: a started ``Launcher`` in this process (2 processors,
    ``timeout_s`` 5 unless given), stopped when the test ends."""
    made: list[Launcher] = []

    def make(**changes: Any) -> Launcher:
        settings: dict[str, Any] = {"concurrency": 2, "timeout_s": 5.0, **changes}
        launcher = Launcher(config.replace(**settings), hooks=hooks, registry=registry)
        made.append(launcher)
        launcher.start()
        return launcher

    yield make
    for launcher in made:
        if not launcher.state.stopping.is_set():
            launcher.stop()


@pytest.fixture
def loop_threads() -> Iterator[LoopThreads]:
    """The event loop thread of the processors ``start`` makes (started on first use,
    as the launcher does), stopped when the test ends."""
    threads = LoopThreads()
    yield threads
    threads.stop()


@pytest.fixture
def start(
    r: redis.Redis, config: Config, registry: Registry, loop_threads: LoopThreads
) -> Iterator[Callable[..., Processor]]:
    """``start(hooks=None, **settings)``: start one processor thread (concurrency 1
    unless told), wired like the launcher wires one; quieted and joined at teardown."""
    with started_processors(r, config, registry, loop_threads) as make:
        yield make
