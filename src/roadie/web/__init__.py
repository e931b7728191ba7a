"""roadie's dashboard: an ASGI app (Starlette) to serve or mount.

::

    from roadie.web import create_app
    app.mount("/roadie", create_app(config, auth=my_check))
    app.mount("/roadie", create_app(config, allowed_hosts=["jobs.example.com"]))

Needs the ``web`` extra: ``pip install "roadie[web]"``. See ``docs/dashboard.md``.
"""

from roadie.web.app import create_app
from roadie.web.security import LOOPBACK_HOSTS, AuthHook, HostAllowList, basic_auth

__all__ = ["LOOPBACK_HOSTS", "AuthHook", "HostAllowList", "basic_auth", "create_app"]
