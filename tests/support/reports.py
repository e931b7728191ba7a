"""What a failed test's report shows of the processes it ran.

A fixture that starts processes calls ``attach(request, title, report)``; when the test
fails (in setup, call or teardown), ``report()`` goes into its report as the section
``title``, so that a failure in CI says what the processes saw. A pytest plugin (named
in ``pytest_plugins`` of tests/conftest.py) for its hook.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import pytest

__all__ = ["attach"]

_REPORTS = pytest.StashKey[list[tuple[str, Callable[[], str]]]]()


def attach(request: pytest.FixtureRequest, title: str, report: Callable[[], str]) -> None:
    """Add ``report()`` as section ``title`` to the test's report if it fails."""
    request.node.stash.setdefault(_REPORTS, []).append((title, report))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for title, text in item.stash.get(_REPORTS, []):
            report.sections.append((title, text()))
    return report
