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
from collections.abc import Callable, Iterable
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

    def mount_dashboard(
        self,
        app: Flask,
        path: str = "/roadie",
        *,
        require: Callable[[], bool] | None = None,
        login_view: str | None = None,
        allowed_hosts: Iterable[str] | None = None,
    ) -> None:
        """Serve roadie's dashboard at ``path`` of ``app``, behind the app's own login.

        ``require`` runs inside the app's request context (``session``,
        flask-login's ``current_user``) for every dashboard request; when it returns
        False the request is sent to ``url_for(login_view, next=...)``, or refused
        with 401 without a ``login_view``. The dashboard (Starlette, through a2wsgi)
        is mounted with werkzeug's ``DispatcherMiddleware`` and reads the Redis of the
        app's ``ROADIE_*`` settings; it keeps its own CSRF protection. Needs the
        ``web`` extra. Call after ``init_app``.

        ``allowed_hosts`` (by default the app's ``TRUSTED_HOSTS``) are the ``Host``
        names the dashboard answers to, against DNS rebinding; others get 400. It is
        passed on because requests to the dashboard never reach Flask's own check.
        """
        from a2wsgi import ASGIMiddleware
        from flask import redirect, request, url_for
        from werkzeug.middleware.dispatcher import DispatcherMiddleware
        from werkzeug.wrappers import Response

        from roadie.web import HostAllowList, create_app

        prefix = "/" + path.strip("/")
        client: Client = app.extensions[EXTENSION]
        if allowed_hosts is None:
            allowed_hosts = app.config.get("TRUSTED_HOSTS")
        hint = "add it to the app's TRUSTED_HOSTS (or to allowed_hosts of mount_dashboard)"
        hosts = HostAllowList(allowed_hosts, how_to_allow=hint) if allowed_hosts else None
        asgi = create_app(client.config, allowed_hosts=hosts)
        dashboard: Any = ASGIMiddleware(asgi)  # type: ignore[arg-type]
        dispatch = DispatcherMiddleware(app.wsgi_app, {prefix: dashboard})

        def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
            where = environ.get("PATH_INFO", "")
            if require is not None and (where == prefix or where.startswith(prefix + "/")):
                with app.request_context(environ):
                    if not require():
                        refusal: Any = (
                            redirect(url_for(login_view, next=request.full_path.rstrip("?")))
                            if login_view else Response("login required", 401)
                        )
                        return refusal(environ, start_response)
            return dispatch(environ, start_response)

        app.wsgi_app = wsgi_app  # type: ignore[method-assign]


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
