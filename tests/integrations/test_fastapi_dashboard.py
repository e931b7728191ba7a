"""The dashboard mounted in a FastAPI app (``roadie.contrib.fastapi.dashboard``) behind
the app's own session login: the real app and its test client, real Redis."""

from __future__ import annotations

import re

import pytest
import redis
from fastapi import FastAPI, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse
from fastapi.testclient import TestClient
from starlette.middleware.sessions import SessionMiddleware

from roadie.client import Client
from roadie.config import Config
from roadie.contrib.fastapi import Roadie, dashboard
from roadie.middleware import Hooks
from roadie.web.data import Data

pytestmark = pytest.mark.redis


def logged_in(request: Request) -> bool:
    return "user" in request.session


def make_app(config: Config, *, login_url: str | None = "/login") -> FastAPI:
    rd = Roadie(config)
    app = FastAPI(lifespan=rd.lifespan)
    app.add_middleware(SessionMiddleware, secret_key="test-only")

    @app.get("/login")
    async def login_form() -> PlainTextResponse:
        return PlainTextResponse("log in")

    @app.post("/login")
    async def login(request: Request, user: str = Form(), password: str = Form(),
                    next: str = "/") -> RedirectResponse:
        if password != "pw":
            return RedirectResponse("/login", 303)
        request.session["user"] = user
        return RedirectResponse(next, 303)

    app.mount("/roadie", dashboard(require=logged_in, login_url=login_url))
    return app


def test_anonymous_is_sent_to_the_login(config: Config, r: redis.Redis) -> None:
    with TestClient(make_app(config), follow_redirects=False) as http:
        response = http.get("/roadie/queues")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Froadie%2Fqueues"
        assert http.post("/roadie/queues/default", data={"action": "pause"}).status_code == 303
    assert "default" not in Data(config).paused()


def test_without_login_url_the_refusal_is_401(config: Config, r: redis.Redis) -> None:
    with TestClient(make_app(config, login_url=None)) as http:
        assert http.get("/roadie/").status_code == 401


def test_logged_in_user_sees_the_dashboard_and_pauses_a_queue(
    config: Config, r: redis.Redis,
) -> None:
    Client(config, hooks=Hooks()).push({"class": "EmailJob", "args": [1]})
    with TestClient(make_app(config), follow_redirects=False) as http:
        login = http.post("/login?next=/roadie/queues", data={"user": "ada", "password": "pw"})
        assert login.status_code == 303 and login.headers["location"] == "/roadie/queues"
        page = http.get("/roadie/queues")
        assert page.status_code == 200
        assert 'href="/roadie/queues/default"' in page.text
        assert 'href="/roadie/periodic"' in page.text
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found is not None
        assert http.get("/roadie/static/roadie.css").status_code == 200

        # The dashboard's own CSRF rules still apply behind the app's login.
        refused = http.post("/roadie/queues/default", data={"action": "pause", "csrf": "x" * 43})
        assert refused.status_code == 403
        assert "default" not in Data(config).paused()

        done = http.post("/roadie/queues/default",
                         data={"action": "pause", "csrf": found.group(1)})
        assert done.status_code == 303
        assert done.headers["location"] == "/roadie/queues?done=pause:1"
        assert "default" in Data(config).paused()


def test_trusted_host_middleware_or_allowed_hosts_refuse_a_rebinding_host(
        config: Config, r: redis.Redis) -> None:
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    # Starlette's own setting covers the mounted dashboard (docs/dashboard.md).
    app = FastAPI(lifespan=Roadie(config).lifespan)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["shop.example"])
    app.mount("/roadie", dashboard(require=lambda request: True))
    with TestClient(app, base_url="http://rebind.evil.example") as http:
        assert http.get("/roadie/api/stats").status_code == 400
    with TestClient(app, base_url="http://shop.example") as http:
        assert http.get("/roadie/api/stats").status_code == 200
    # Or the dashboard's own list, for this mount only.
    own = FastAPI(lifespan=Roadie(config).lifespan)
    own.mount("/roadie", dashboard(require=lambda request: True,
                                   allowed_hosts=["shop.example"]))
    with TestClient(own, base_url="http://rebind.evil.example") as http:
        refused = http.get("/roadie/api/stats")
        assert refused.status_code == 400 and "rebind.evil.example" in refused.json()["host"]
    with TestClient(own, base_url="http://shop.example") as http:
        assert http.get("/roadie/api/stats").status_code == 200
