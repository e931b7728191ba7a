"""version.py: roadie's version is the installed package's (pyproject.toml's, written
once), or ``0+unknown`` from a source tree never installed (no Redis)."""

from __future__ import annotations

import importlib.metadata

import pytest

import roadie
from roadie import version


def test_version_is_the_packages_own() -> None:
    # Written once, in pyproject.toml; what pip installed is what roadie reports.
    assert roadie.__version__ == importlib.metadata.version("roadie")
    assert roadie.__version__.count(".") >= 1


def test_a_source_tree_never_installed_reports_an_unknown_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def not_installed(name: str) -> str:
        asked.append(name)
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert version._installed_version() == "0+unknown"
    assert asked == ["roadie"]
    monkeypatch.undo()
    assert version._installed_version() == version.VERSION == roadie.__version__
