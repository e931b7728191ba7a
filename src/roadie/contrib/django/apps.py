"""The Django app: configures roadie's default client from ``settings.ROADIE``."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings

import roadie
from roadie.contrib import _settings

#: Keys of ``settings.ROADIE`` that belong to the Django integration, not to ``Config``.
DJANGO_KEYS = ("AUTODISCOVER",)


def roadie_settings() -> dict[str, Any]:
    """``settings.ROADIE`` without the Django-only keys (see ``DJANGO_KEYS``)."""
    given = getattr(settings, "ROADIE", None) or {}
    if not isinstance(given, dict):
        raise roadie.ConfigError(f"settings.ROADIE must be a dict, got {type(given).__name__}")
    return {k: v for k, v in given.items() if k.upper() not in DJANGO_KEYS}


def autodiscover_enabled() -> bool:
    given = getattr(settings, "ROADIE", None) or {}
    return bool(next((v for k, v in given.items() if k.upper() == "AUTODISCOVER"), True))


class RoadieConfig(AppConfig):
    name = "roadie.contrib.django"
    label = "roadie"
    verbose_name = "Roadie"

    def ready(self) -> None:
        roadie.configure(_settings.build_config(roadie_settings(), "settings.ROADIE"))
