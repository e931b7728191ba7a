"""``manage.py roadie run ...``: roadie's CLI with this project's settings.

Everything after ``roadie`` goes to roadie's own command line (``manage.py roadie run
-q mail,2 -q default -c 5``, ``manage.py roadie check``). ``settings.ROADIE`` is handed
to it as ``ROADIE_*`` environment variables, so command-line options still win. For
``run``, the ``jobs`` module of every installed app is imported (``"AUTODISCOVER":
False`` turns that off) and every job runs between two ``close_old_connections()``, as
a request does, so a long-running process never keeps a broken or expired database
connection.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections
from django.utils.module_loading import autodiscover_modules

import roadie
from roadie import cli
from roadie.contrib import _settings
from roadie.contrib.django.apps import autodiscover_enabled, roadie_settings
from roadie.payload import Payload


def close_connections(
    job: roadie.Job, payload: Payload, queue: str, call_next: Callable[[], None], /
) -> None:
    """Server middleware: what Django does around a request, around a job."""
    close_old_connections()
    try:
        call_next()
    finally:
        close_old_connections()


class Command(BaseCommand):
    help = "Run roadie with this project's settings: manage.py roadie run [roadie options]"
    # roadie run checks what it needs itself; the checks of a web project (templates,
    # URLs) need not hold in a worker.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "roadie_args", nargs=argparse.REMAINDER, metavar="COMMAND ...",
            help="a roadie command and its options: run, check, embedded (see roadie --help)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        argv: list[str] = list(options["roadie_args"]) or ["--help"]
        os.environ.update(_settings.to_env(roadie_settings(), "settings.ROADIE"))
        if argv[0] == "run":
            if autodiscover_enabled():
                autodiscover_modules("jobs")
            if close_connections not in roadie.hooks.server_middleware:
                roadie.hooks.server_middleware.append(close_connections)
        code = cli.main(argv)
        if code:
            sys.exit(code)
