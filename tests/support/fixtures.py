"""Fixtures shared by the suites that run real processes or import example apps.

* ``make_harness(url, env=None)``: a ``support.procs.Harness`` whose processes die
  with the test and whose logs go into the report of a failed test; its ``roadie run``
  processes load ``harness_jobs``, a fixture the suite's conftest.py gives.
* ``use_client(url)``: points ``perform_async`` & co. at ``url`` for the test.
* ``import_from(folder, module)``: imports ``module`` with ``folder`` on ``sys.path``
  for this test only (the example apps, the benchmark scripts).

A pytest plugin, named in ``pytest_plugins`` of tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType

import pytest

import roadie
import roadie.current
from roadie.config import Config
from support.procs import Harness
from support.reports import attach

HarnessFactory = Callable[..., Harness]


@pytest.fixture
def harness_jobs() -> Path | None:
    """The job module (``roadie run -r``) of ``make_harness``'s processes; a suite
    whose tests spawn ``roadie run`` gives its own in its conftest.py. None: the
    harness only ``start``s other commands."""
    return None


@pytest.fixture
def make_harness(request: pytest.FixtureRequest, tmp_path: Path,
                 harness_jobs: Path | None) -> Iterator[HarnessFactory]:
    """``make_harness(url, env=None)``: a Harness whose processes die with the test."""
    made: list[Harness] = []

    def make(url: str, env: Mapping[str, str] | None = None) -> Harness:
        harness = Harness(url, tmp_path / f"procs{len(made) + 1}", env, jobs=harness_jobs)
        made.append(harness)
        attach(request, "processes", harness.report)
        return harness

    try:
        yield make
    finally:
        for harness in made:
            harness.close()


@pytest.fixture
def use_client() -> Iterator[Callable[[str], roadie.Client]]:
    """``use_client(url)`` points ``perform_async`` & co. at ``url`` for this test."""
    made: list[roadie.Client] = []
    # Each use() stacks a default client; closing the stack puts back the one before.
    defaults = contextlib.ExitStack()

    def use(url: str) -> roadie.Client:
        client = roadie.Client(Config(redis_url=url, redis_url_configured=True))
        defaults.enter_context(roadie.current.using(client))
        made.append(client)
        return client

    try:
        yield use
    finally:
        defaults.close()
        for client in made:
            client.redis.close()


@pytest.fixture
def import_from(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path, str], ModuleType]:
    """``import_from(folder, module)``: ``module`` imported with ``folder`` first on
    ``sys.path`` until the test ends (the module itself stays in ``sys.modules``)."""

    def load(folder: Path, module: str) -> ModuleType:
        monkeypatch.syspath_prepend(str(folder))
        return importlib.import_module(module)

    return load
