"""roadie's dashboard: an ASGI app (Starlette) to serve or mount.

::

    from roadie.web import create_app
    app.mount("/roadie", create_app(config, auth=my_check))

Needs the ``web`` extra: ``pip install "roadie[web]"``. See ``docs/dashboard.md``.
"""

from roadie.web.app import create_app
from roadie.web.security import AuthHook, basic_auth

__all__ = ["AuthHook", "basic_auth", "create_app"]
