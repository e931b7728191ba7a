"""FastAPI / Starlette integration: lifespan and an asyncio client.

::

    from fastapi import FastAPI
    from roadie.contrib.fastapi import Roadie, RoadieClient

    rd = Roadie(roadie.Config(redis_url="redis://127.0.0.1:6379/0"))   # or Roadie(): env
    app = FastAPI(lifespan=rd.lifespan)

    @app.post("/signup")
    async def signup(form: SignupForm, jobs: RoadieClient) -> dict[str, int]:
        user = await save_user(form)
        await jobs.perform_async(WelcomeEmail, user.id)     # never blocks the event loop
        return {"id": user.id}

    @app.post("/sync-view")
    def sync_view() -> None:                                 # runs in a worker thread:
        WelcomeEmail.perform_async(1)                        # the blocking client is fine

An ``async def`` view must not call ``perform_async`` (a blocking Redis round trip
stalls every request on the loop); it awaits ``roadie.aio``'s functions, or the
``RoadieClient`` dependency, instead. Both build the payload exactly as the blocking
client does (same JSON check, same client middleware).

With a lifespan of your own, enter roadie's inside it::

    @asynccontextmanager
    async def lifespan(app):
        async with rd.lifespan(app):
            yield
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.types import Receive, Scope, Send

import roadie
from roadie import aio
from roadie.aio import AsyncClient
from roadie.client import Client
from roadie.config import Config
from roadie.redis.connection import redact

__all__ = ["AsyncClient", "Roadie", "RoadieClient", "async_client", "dashboard"]


class Roadie:
    """Sets roadie's default client; its lifespan opens and closes the asyncio one.

    ``Roadie(config)`` or ``Roadie(client=...)`` makes that roadie's default client (used
    by ``perform_async`` and ``roadie.aio``); ``Roadie()`` keeps the default one, which
    reads ``REDIS_URL`` / ``ROADIE_*`` / ``roadie.toml``. ``check=True`` makes startup
    fail unless Redis answers a PING.
    """

    def __init__(
        self, config: Config | None = None, *, client: Client | None = None, check: bool = False
    ) -> None:
        if config is not None and client is not None:
            raise ValueError("pass a Config or a Client, not both")
        if config is not None or client is not None:
            roadie.configure(config, client=client)
        self.check = check

    @asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        client = aio.get_client()
        app.state.roadie = client
        if self.check:
            try:
                await (await client.redis()).ping()
            except Exception as exc:
                await aio.close()
                url = redact(client.client.config.redis_url)
                raise roadie.RedisUnavailable(f"Redis at {url} does not answer: {exc}") from exc
        try:
            yield
        finally:
            await aio.close()


async def async_client() -> AsyncClient:
    """FastAPI dependency: the running loop's ``AsyncClient`` (async: a plain function
    would run in a worker thread, away from the loop)."""
    return aio.get_client()


#: ``jobs: RoadieClient`` in a view's parameters injects the asyncio client.
RoadieClient = Annotated[AsyncClient, Depends(async_client)]


def dashboard(
    config: Config | None = None,
    *,
    require: Callable[[Request], bool | Awaitable[bool]] | None = None,
    login_url: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """roadie's dashboard, to ``app.mount("/roadie", dashboard(require=...))``.

    ``require`` gets each dashboard request (a Starlette ``Request``: ``request.session``
    with Starlette's ``SessionMiddleware``, your cookies and headers) and returns, or
    awaits to, True to let it in. Otherwise the request is sent to
    ``login_url?next=<path>`` (303), or refused with 401 without a ``login_url``. The
    dashboard reads the Redis of ``config``, by default that of roadie's default client
    (``Roadie(config)`` sets it). It keeps its own CSRF protection. Needs the ``web``
    extra.

    Against DNS rebinding, add Starlette's ``TrustedHostMiddleware`` to your app (it
    covers mounted apps too), or give ``allowed_hosts``: the ``Host`` names the
    dashboard answers to (others get 400).
    """
    from roadie.web import create_app

    app = create_app(config or roadie.get_client().config,
                     auth=require if login_url is None else None, allowed_hosts=allowed_hosts)

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and require is not None and login_url is not None:
            request = Request(scope)
            allowed = require(request)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not allowed:
                target = f"{login_url}?{urlencode({'next': request.url.path})}"
                await RedirectResponse(target, 303)(scope, receive, send)
                return
        await app(scope, receive, send)

    return guarded
