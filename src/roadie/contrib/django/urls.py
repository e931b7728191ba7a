"""The dashboard at a URL of a Django site, behind the admin login (staff only).

::

    # urls.py
    from django.contrib import admin
    from django.urls import include, path

    urlpatterns = [
        path("admin/", admin.site.urls),
        path("roadie/", include("roadie.contrib.django.urls")),
    ]

An anonymous visitor, or a user who is not staff, is sent to the admin's login page
(``staff_member_required``). The dashboard (a Starlette app, run through a2wsgi) reads
the Redis of roadie's default client, which ``ROADIE`` in the settings configures. It
keeps its own CSRF protection (a per-session token and a same-site check), so the view
is exempt from Django's. The ``Host`` of each request is checked against Django's
``ALLOWED_HOSTS`` (against DNS rebinding). Needs the ``web`` extra:
``pip install "roadie[web,django]"``.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

__all__ = ["dashboard", "urlpatterns"]

_lock = threading.Lock()
_wsgi: Callable[..., Iterable[bytes]] | None = None


def _dashboard_wsgi() -> Callable[..., Iterable[bytes]]:
    global _wsgi
    with _lock:
        if _wsgi is None:
            from a2wsgi import ASGIMiddleware

            from roadie.client import get_client
            from roadie.web import create_app

            _wsgi = ASGIMiddleware(create_app(get_client().config))  # type: ignore[arg-type]
        return _wsgi


@csrf_exempt
@staff_member_required
def dashboard(request: HttpRequest, path: str = "") -> HttpResponse:
    """The dashboard's page (or API call, or static file) at ``path``."""
    # Django's ALLOWED_HOSTS, checked here whatever middleware the site has: a foreign
    # Host (DNS rebinding) raises DisallowedHost, which Django answers with 400.
    request.get_host()
    body = request.body
    prefix = request.path_info[: len(request.path_info) - len(path)].rstrip("/")
    environ: dict[str, Any] = {
        **request.META,
        "SCRIPT_NAME": request.META.get("SCRIPT_NAME", "").rstrip("/") + prefix,
        "PATH_INFO": "/" + path,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], object]:
        started["status"], started["headers"] = status, headers
        return lambda chunk: None

    result = _dashboard_wsgi()(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    response = HttpResponse(content, status=int(started["status"].split(" ", 1)[0]))
    for name, value in started["headers"]:
        if name.lower() == "set-cookie":
            continue
        response.headers[name] = value
    for name, value in started["headers"]:
        if name.lower() == "set-cookie":
            _set_cookie(response, value)
    return response


def _set_cookie(response: HttpResponse, header: str) -> None:
    from http.cookies import SimpleCookie

    cookie: SimpleCookie = SimpleCookie()
    cookie.load(header)
    for key, morsel in cookie.items():
        samesite = morsel["samesite"] or None
        response.set_cookie(key, morsel.value, path=morsel["path"] or "/",
                            httponly=bool(morsel["httponly"]),
                            samesite=samesite)


urlpatterns = [re_path(r"^(?P<path>.*)$", dashboard)]
