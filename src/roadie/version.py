"""Roadie's version, read from the installed package's metadata (pyproject.toml's
``version``), so that it is written in one place."""

from __future__ import annotations

from importlib import metadata


def _installed_version() -> str:
    try:
        return metadata.version("roadie")
    except metadata.PackageNotFoundError:  # run from a source tree never installed
        return "0+unknown"


VERSION = _installed_version()
