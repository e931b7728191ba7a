"""Fixtures of the framework-integration tests: real framework apps, real Redis, and
real subprocesses (``manage.py roadie run``, ``flask roadie run``, the example story).

When a test fails, the tail of every subprocess's output is attached to its report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from framework_support import Subprocess

import roadie
import roadie.current


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.failed:
        for proc in getattr(item, "_subprocesses", []):
            tail = "\n".join(proc.output().splitlines()[-60:])
            report.sections.append((f"output of {' '.join(proc.argv[:4])} ...", tail))
    return report


@pytest.fixture
def spawn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Subprocess]]:
    """``spawn(argv, env=..., cwd=...)`` starts a Subprocess that dies with the test."""
    made: list[Subprocess] = []
    request.node._subprocesses = made

    def start(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> Subprocess:
        proc = Subprocess(argv, env=env, cwd=cwd, log_path=tmp_path / f"proc{len(made)}.log")
        made.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in made:
            proc.kill()


@pytest.fixture(autouse=True)
def keep_default_client() -> Iterator[None]:
    """Integrations set roadie's default client (``roadie.configure``); put it back."""
    # The block's default is today's; on leaving it, the one before comes back.
    with roadie.current.using(roadie.current.configured()):
        yield

