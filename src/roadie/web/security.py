"""The dashboard's guards: authentication hook, cross-site checks, CSRF token, headers.

* ``allowed_hosts``: the ``Host`` names this dashboard answers to (``HostAllowList``);
  any other gets 400 naming the host and how to allow it. Against DNS rebinding: a
  page of another site that points its own name at 127.0.0.1 is same-origin to the
  browser, so without this check it could read the JSON API and post actions. A
  browser always sends that name as ``Host``. ``roadie web`` bound to a loopback
  address accepts loopback names only (``LOOPBACK_HOSTS``).
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
import ipaddress
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
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


#: Names a browser resolves to this machine without asking DNS (``*.localhost`` too,
#: RFC 6761), so no other site can take them over: ``roadie web``'s list when bound
#: to a loopback address.
LOOPBACK_HOSTS = ("localhost", ".localhost", "127.0.0.0/8", "::1")
#: Added to that list for any other bind: a ``Host`` that is an IP address is the
#: address the browser connected to, so it cannot be a rebinding (that needs a name).
ANY_IP_ADDRESS = ("0.0.0.0/0", "::/0")

_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def host_name(host_header: str) -> str:
    """The name of a ``Host`` header without its port, lower case, no final dot;
    an IPv6 address without its brackets."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        value = name
    return value.rstrip(".")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class HostAllowList:
    """The ``Host`` names a dashboard answers to.

    Each entry is a name (``dash.example.com``), ``.example.com`` (it and every
    subdomain, as Django's ``ALLOWED_HOSTS``), ``*.example.com`` (subdomains only, as
    Starlette's ``TrustedHostMiddleware``), an IP address (``10.0.0.5``, ``::1``), a
    network (``10.0.0.0/8``), or ``*`` for any host. Ports are ignored.
    ``how_to_allow`` ends the refusal message: where the operator adds a name
    (``{name}`` in it is replaced by the refused one).
    """

    def __init__(self, entries: Iterable[str], *,
                 how_to_allow: str = "add it to allowed_hosts of roadie.web.create_app",
                 ) -> None:
        self.entries = tuple(e.strip() for e in entries if e.strip())
        self.how_to_allow = how_to_allow
        self.any_host = False
        self.names: set[str] = set()
        self.suffixes: list[str] = []  # ".example.com": the name itself or under it
        self.networks: list[IpNetwork] = []
        for entry in self.entries:
            self._add(entry)

    def _add(self, entry: str) -> None:
        value = entry.lower()
        if value == "*":
            self.any_host = True
            return
        bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        try:
            self.networks.append(ipaddress.ip_network(bare, strict=False))
            return
        except ValueError:
            pass
        if value.startswith("*."):
            name, exact, under = value[2:], False, True
        elif value.startswith("."):
            name, exact, under = value[1:], True, True
        else:
            name, exact, under = value, True, False
        name = name.rstrip(".")
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"allowed host {entry!r} is not a host name, '.domain', '*.domain', an IP "
                "address, a network or '*' (give it without a scheme, port or path)"
            )
        if exact:
            self.names.add(name)
        if under:
            self.suffixes.append("." + name)

    def allows(self, host_header: str | None) -> bool:
        if self.any_host:
            return True
        if not host_header:
            return False
        name = host_name(host_header)
        ip = _ip(name)
        if ip is not None:
            return any(ip in net for net in self.networks if net.version == ip.version)
        return name in self.names or any(name.endswith(s) for s in self.suffixes)

    def refusal(self, host_header: str | None, json: bool) -> Response:
        """The 400 for a request whose ``Host`` is not allowed: says which, and how."""
        if not host_header:
            message = ("roadie refused this request: it has no Host header, and this "
                       "dashboard answers only to the host names it is allowed.")
        else:
            shown = host_header if len(host_header) <= 200 else host_header[:200] + "..."
            name = host_name(shown) or shown
            message = (
                f"roadie refused this request: its Host header is {shown!r}, a name this "
                "dashboard is not allowed to answer to. A page of another site that "
                "points its name at this machine (DNS rebinding) looks the same. "
                f"If {name!r} is your own name for this dashboard, "
                f"{self.how_to_allow.format(name=name)}."
            )
        if json:
            return JSONResponse({"error": message, "host": host_header}, 400)
        return PlainTextResponse(message, 400)


def _is_api(scope: Scope) -> bool:
    """Whether the request is for the JSON API (its refusals are JSON too)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path.removeprefix(root).startswith("/api/")


def loopback_bind(host: str) -> bool:
    """Whether a server bound to ``host`` is reachable from this machine only."""
    if host.lower().rstrip(".") == "localhost":
        return True
    ip = _ip(host.strip("[]"))
    return ip is not None and ip.is_loopback


def web_allowed_hosts(bind: str, extra: Iterable[str]) -> HostAllowList:
    """What ``roadie web --host <bind>`` answers to: loopback names (and, for any other
    bind, any IP address), plus the ``--allowed-host`` names."""
    defaults = LOOPBACK_HOSTS if loopback_bind(bind) else LOOPBACK_HOSTS + ANY_IP_ADDRESS
    return HostAllowList(
        [*defaults, *extra],
        how_to_allow=("start roadie web with --allowed-host {name} (or set "
                      "ROADIE_WEB_ALLOWED_HOSTS, comma-separated)"),
    )


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
    """ASGI middleware: allowed hosts, auth hook, cross-site refusal, security headers,
    CSRF cookie."""

    def __init__(self, app: ASGIApp, auth: AuthHook | None = None,
                 allowed_hosts: HostAllowList | None = None) -> None:
        self.app = app
        self.auth = auth
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal: Response | None = None
        hosts = self.allowed_hosts
        if hosts is not None and not hosts.allows(request.headers.get("host")):
            refusal = hosts.refusal(request.headers.get("host"), json=_is_api(scope))
        elif self.auth is not None:
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
