"""The dashboard mounted in the example Django site (``roadie.contrib.django.urls``)
behind the admin login: real Django test client, real Redis."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client as DjangoClient

from roadie.client import Client
from roadie.config import Config
from roadie.middleware import Hooks
from roadie.web.data import Data

# ``site``: the example site set up on this session's Redis (conftest.py).
pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("site")]


@pytest.fixture
def users() -> Iterator[None]:
    from django.contrib.auth.models import User

    User.objects.create_user("staff", password="pw-staff", is_staff=True)
    User.objects.create_user("plain", password="pw-plain")
    try:
        yield
    finally:
        User.objects.all().delete()


def test_anonymous_is_sent_to_the_admin_login() -> None:
    response = DjangoClient().get("/roadie/queues")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/roadie/queues"


@pytest.mark.usefixtures("users")
def test_a_user_who_is_not_staff_is_sent_to_the_login() -> None:
    client = DjangoClient()
    assert client.login(username="plain", password="pw-plain")
    response = client.get("/roadie/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.usefixtures("users")
def test_staff_sees_the_dashboard_and_pauses_a_queue(config: Config) -> None:
    Client(config, hooks=Hooks()).push({"class": "EmailJob", "args": [1]})
    client = DjangoClient()
    assert client.login(username="staff", password="pw-staff")
    page = client.get("/roadie/queues")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'href="/roadie/queues/default"' in text and 'href="/roadie/periodic"' in text
    assert page["Content-Security-Policy"].startswith("default-src 'none'")
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert found is not None
    assert client.get("/roadie/static/roadie.css").status_code == 200

    # The dashboard's own CSRF rules still apply behind Django's login.
    refused = client.post("/roadie/queues/default", {"action": "pause", "csrf": "x" * 43})
    assert refused.status_code == 403
    assert "default" not in Data(config).paused()

    done = client.post("/roadie/queues/default", {"action": "pause", "csrf": found.group(1)})
    assert done.status_code == 303
    assert done["Location"] == "/roadie/queues?done=pause:1"
    assert "default" in Data(config).paused()


@pytest.mark.usefixtures("users")
def test_a_host_outside_allowed_hosts_is_refused_even_for_staff() -> None:
    # ALLOWED_HOSTS of the example site: 127.0.0.1, localhost, testserver.
    client = DjangoClient()
    assert client.login(username="staff", password="pw-staff")
    assert client.get("/roadie/api/stats").status_code == 200
    refused = client.get("/roadie/api/stats", HTTP_HOST="rebind.evil.example")
    assert refused.status_code == 400
    assert client.get("/roadie/api/stats", HTTP_HOST="localhost:8000").status_code == 200
