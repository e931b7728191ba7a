"""Roadie settings given by a web framework's configuration (Django's ``ROADIE`` dict,
Flask's ``ROADIE_*`` keys), turned into a ``Config`` or into ``ROADIE_*`` environment
variables for ``roadie run``.

Framework settings win over the environment and ``roadie.toml`` (they are written in
the app's code, usually from the environment already); options on the ``roadie run``
command line win over everything.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from roadie import config as config_mod
from roadie.config import Config
from roadie.errors import ConfigError

#: Config fields a framework may set, by lower-case name. Periodic jobs are not among
#: them: ``roadie run`` reads settings from the environment, which cannot hold them.
SETTABLE = tuple(
    f.name for f in dataclasses.fields(Config)
    if f.name not in ("extra", "redis_url_configured", "periodic")
)


def coerce(settings: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Settings keyed by Config field name (any case) -> typed values; errors name the key.
    A None value counts as not set (``os.environ.get("REDIS_URL")`` on a machine without it)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = key.lower()
        if name == "periodic":
            raise ConfigError(
                f"{key!r} in {source}: declare periodic jobs with roadie.periodic(...) in a "
                "jobs module, or as [[roadie.periodic]] tables in roadie.toml"
            )
        if name not in SETTABLE:
            raise ConfigError(
                f"unknown roadie setting {key!r} in {source}; known settings: "
                + ", ".join(n.upper() for n in SETTABLE)
            )
        if value is not None:
            out[name] = config_mod.coerce_setting(name, value, f"{source} ({key})")
    return out


def build_config(
    settings: Mapping[str, Any], source: str, *, env: Mapping[str, str] | None = None
) -> Config:
    """``Config`` from framework settings over environment, ``roadie.toml`` and defaults.

    A ``CONFIG`` key (or ``ROADIE_CONFIG`` in the environment) names the TOML file.
    """
    settings = dict(settings)
    config_file = settings.pop("config", None) or settings.pop("CONFIG", None)
    return config_mod.load(cli=coerce(settings, source), env=env, config_file=config_file)


def to_env(settings: Mapping[str, Any], source: str) -> dict[str, str]:
    """The ``ROADIE_*`` variables that make ``roadie run`` read these settings."""
    settings = dict(settings)
    env: dict[str, str] = {}
    config_file = settings.pop("config", None) or settings.pop("CONFIG", None)
    if config_file:
        env["ROADIE_CONFIG"] = os.fspath(config_file)
    for name, value in coerce(settings, source).items():
        if name == "queues":
            text = " ".join(f"{q},{w}" if w else q for q, w in value)
        elif isinstance(value, tuple):
            text = " ".join(value)
        else:
            text = str(value)
        env[f"ROADIE_{name.upper()}"] = text
    return env
