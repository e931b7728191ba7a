"""The dashboard mounted in the example Flask app (``Roadie.mount_dashboard``) behind a
session login: the real app and its test client, real Redis."""

from __future__ import annotations

import re
from types import ModuleType

import pytest
import redis
from flask import Flask, redirect, request, session

from roadie.client import Client
from roadie.config import Config
from roadie.middleware import Hooks
from roadie.web.data import Data

pytestmark = pytest.mark.redis


@pytest.fixture
def app(shop: ModuleType, redis_url: str, r: redis.Redis) -> Flask:
    app = shop.create_app({"ROADIE_REDIS_URL": redis_url, "SECRET_KEY": "test-only"})

    @app.post("/login")
    def login() -> object:
        if request.form.get("password") != "pw":
            return "wrong password", 403
        session["user"] = request.form["user"]
        return redirect(request.args.get("next") or "/")

    @app.get("/login")
    def login_form() -> str:
        return "log in"

    shop.rd.mount_dashboard(app, "/roadie", require=lambda: "user" in session,
                       login_view="login_form")
    return app


def test_anonymous_is_sent_to_the_login(app: Flask) -> None:
    response = app.test_client().get("/roadie/queues")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/roadie/queues"
    assert app.test_client().get("/roadie").status_code == 302
    # The app's own routes are not behind the dashboard's login.
    assert app.test_client().get("/login").status_code == 200


def test_without_login_view_the_refusal_is_401(
    shop: ModuleType, redis_url: str, r: redis.Redis
) -> None:
    app = shop.create_app({"ROADIE_REDIS_URL": redis_url, "SECRET_KEY": "test-only"})
    shop.rd.mount_dashboard(app, "/jobs", require=lambda: False)
    assert app.test_client().get("/jobs/").status_code == 401


def test_logged_in_user_sees_the_dashboard_and_pauses_a_queue(
    app: Flask, config: Config,
) -> None:
    Client(config, hooks=Hooks()).push({"class": "EmailJob", "args": [1]})
    client = app.test_client()
    login = client.post("/login?next=/roadie/queues", data={"user": "ada", "password": "pw"})
    assert login.status_code == 302 and login.headers["Location"] == "/roadie/queues"
    page = client.get("/roadie/queues")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'href="/roadie/queues/default"' in text and 'href="/roadie/periodic"' in text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert found is not None
    assert client.get("/roadie/static/roadie.css").status_code == 200

    # The dashboard's own CSRF rules still apply behind the app's login.
    refused = client.post("/roadie/queues/default", data={"action": "pause", "csrf": "x" * 43})
    assert refused.status_code == 403
    assert "default" not in Data(config).paused()

    done = client.post("/roadie/queues/default",
                       data={"action": "pause", "csrf": found.group(1)})
    assert done.status_code == 303
    assert done.headers["Location"] == "/roadie/queues?done=pause:1"
    assert "default" in Data(config).paused()


def test_the_dashboard_answers_only_to_the_apps_trusted_hosts(
    shop: ModuleType, redis_url: str, r: redis.Redis
) -> None:
    # Requests to the dashboard never reach Flask's own TRUSTED_HOSTS check, so the
    # dashboard is given the list: a rebinding page's Host gets 400, even logged in.
    app = shop.create_app({"ROADIE_REDIS_URL": redis_url, "SECRET_KEY": "test-only",
                      "TRUSTED_HOSTS": ["shop.example", ".shop.test"]})
    shop.rd.mount_dashboard(app, "/roadie", require=lambda: True)
    client = app.test_client()
    refused = client.get("/roadie/api/stats", base_url="http://rebind.evil.example")
    assert refused.status_code == 400
    assert "rebind.evil.example" in refused.get_json()["error"]
    assert "TRUSTED_HOSTS" in refused.get_json()["error"]
    assert client.get("/roadie/api/stats", base_url="http://shop.example").status_code == 200
    assert client.get("/roadie/", base_url="http://admin.shop.test").status_code == 200
