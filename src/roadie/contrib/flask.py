"""Flask integration: an extension with app-factory configuration.

::

    from flask import Flask
    from roadie.contrib.flask import Roadie

    rd = Roadie()

    def create_app(test_config=None):
        app = Flask(__name__)
        app.config["ROADIE_REDIS_URL"] = "redis://127.0.0.1:6379/0"
        app.config["ROADIE_QUEUES"] = ["mail,2", "default"]
        rd.init_app(app)
        return app

    @app.post("/signup")
    def signup():
        user = save_user(request.form)
        WelcomeEmail.perform_async(user.id)
        ...

    $ flask --app myapp roadie run -r myapp.jobs

Every ``ROADIE_<SETTING>`` key of ``app.config`` sets that roadie setting (``REDIS_URL``,
``NAMESPACE``, ``QUEUES``, ``CONCURRENCY``, ...; ``ROADIE_CONFIG`` names a TOML file);
they win over the environment and ``roadie.toml``. ``init_app`` makes the app's client
roadie's default one, which ``perform_async`` uses. ``flask roadie ...`` runs roadie's
own command line with the app's settings, and runs each job inside the app's context
(``current_app``, extensions bound to the app).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

import roadie
from roadie import cli
from roadie.client import Client
from roadie.contrib import _settings
from roadie.payload import Payload

__all__ = ["Roadie", "roadie_command"]

PREFIX = "ROADIE_"
EXTENSION = "roadie"


def app_settings(app: Flask) -> dict[str, Any]:
    """The app's ``ROADIE_*`` config keys, without the prefix."""
    return {k[len(PREFIX):]: v for k, v in app.config.items() if k.startswith(PREFIX)}


class Roadie:
    """``Roadie(app)``, or ``rd = Roadie()`` then ``rd.init_app(app)`` in a factory."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        config = _settings.build_config(app_settings(app), "app.config")
        client = Client(config)
        app.extensions[EXTENSION] = client
        roadie.configure(client=client)
        app.cli.add_command(roadie_command)

    @property
    def client(self) -> Client:
        """The current app's client."""
        client: Client = current_app.extensions[EXTENSION]
        return client


def app_context_middleware(
    app: Flask,
) -> Callable[[roadie.Job, Payload, str, Callable[[], None]], None]:
    """Server middleware running each job inside ``app.app_context()``."""

    def in_app_context(
        job: roadie.Job, payload: Payload, queue: str, call_next: Callable[[], None], /
    ) -> None:
        with app.app_context():
            call_next()

    return in_app_context


@click.command(
    "roadie",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    short_help="Run roadie with this app's settings (flask roadie run ...).",
)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
@with_appcontext
def roadie_command(argv: tuple[str, ...]) -> None:
    """roadie's own command line (run, check, embedded) with this app's settings."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    args = list(argv) or ["--help"]
    os.environ.update(_settings.to_env(app_settings(app), "app.config"))
    if args[0] == "run":
        roadie.hooks.server_middleware.append(app_context_middleware(app))
    code = cli.main(args)
    if code:
        sys.exit(code)
