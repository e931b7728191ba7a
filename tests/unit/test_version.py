"""version.py: roadie's version is the installed package's (no Redis)."""

from __future__ import annotations

import importlib.metadata

import roadie


def test_version_is_the_packages_own() -> None:
    # Written once, in pyproject.toml; what pip installed is what roadie reports.
    assert roadie.__version__ == importlib.metadata.version("roadie")
    assert roadie.__version__.count(".") >= 1
