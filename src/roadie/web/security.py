"""The dashboard's guards: authentication hook, cross-site checks, CSRF token, headers.

* ``auth``: any callable ``(request) -> bool`` (or an awaitable of one). It runs
  before every request; False answers 401 with a Basic challenge. ``basic_auth``
  builds one from a password (``roadie web --password``).
* Cross-site requests that change state are refused twice over:

  1. every POST whose ``Sec-Fetch-Site`` is not ``same-origin``/``none``, or whose
     ``Origin`` names another host, gets 403 (browsers send both on POST);
  2. form POSTs carry a per-session token (``csrf`` field) that must equal the
     ``roadie_csrf`` cookie (SameSite=Strict); JSON API POSTs must carry the
     ``X-Roadie: 1`` header, which no other site can send without a CORS preflight
     that roadie never grants.

* Every answer carries a Content-Security-Policy with no inline script, and pages
  are never framed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import inspect
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The hook for the user's own authentication: True lets the request through.
AuthHook = Callable[[Request], bool | Awaitable[bool]]

CSRF_COOKIE = "roadie_csrf"
CSRF_FIELD = "csrf"
API_HEADER = "x-roadie"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def basic_auth(password: str, username: str = "roadie") -> AuthHook:
    """An ``auth`` hook accepting HTTP Basic credentials ``username:password``."""
    expected = f"{username}:{password}".encode()

    def check(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, expected)

    return check


def cross_site(request: Request) -> str | None:
    """Why this request comes from another site, or None when it does not."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site: {fetch_site}"
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        if origin == "null" or urlsplit(origin).netloc != host:
            return "Origin does not match Host"
    return None


def csrf_token(request: Request) -> str:
    """This browser's token (from its cookie), or a new one ``Guard`` will set."""
    token = request.cookies.get(CSRF_COOKIE)
    if token and len(token) == 43:
        return token
    new: str = request.scope.setdefault("roadie.new_csrf", secrets.token_urlsafe(32))
    return new


def csrf_ok(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())


class Guard:
    """ASGI middleware: auth hook, cross-site refusal, security headers, CSRF cookie."""

    def __init__(self, app: ASGIApp, auth: AuthHook | None = None) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal: Response | None = None
        if self.auth is not None:
            allowed = self.auth(request)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not allowed:
                refusal = PlainTextResponse(
                    "authentication required", 401,
                    headers={"www-authenticate": 'Basic realm="roadie", charset="UTF-8"'},
                )
        if refusal is None and request.method not in SAFE_METHODS:
            why = cross_site(request)
            if why is not None:
                refusal = PlainTextResponse(f"cross-site request refused ({why})", 403)
        if refusal is not None:
            refusal.headers.update(HEADERS)
            await refusal(scope, receive, send)
            return

        root = scope.get("root_path", "") or "/"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                new = scope.get("roadie.new_csrf")
                if new:
                    cookie = (f"{CSRF_COOKIE}={new}; Path={root}; HttpOnly; "
                              "SameSite=Strict")
                    headers.append((b"set-cookie", cookie.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
