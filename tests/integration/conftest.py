"""Fixtures shared by the integration tests of processors and launchers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import roadie.current
from roadie.client import Client
from roadie.config import Config
from roadie.middleware import Hooks
from roadie.registry import Registry


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
