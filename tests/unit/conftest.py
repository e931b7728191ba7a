"""Fixtures shared by the unit tests (no Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import roadie.current
from roadie.registry import Registry
from unit.unit_support import Recorder


@pytest.fixture
def reg() -> Registry:
    """A registry of the test's own (job classes defined in a test register here)."""
    return Registry()


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """A ``Recorder`` as the default client: what ``perform_async`` & co. hand to it."""
    recorder = Recorder()
    with roadie.current.using(recorder):  # type: ignore[arg-type]
        yield recorder
