"""The signup site: ``uvicorn signup.web:app``.

Every view answers at once; the slow work (mail, SMS, the rates API) goes to roadie.
``def`` views run in FastAPI's thread pool and push with the blocking client
(``WelcomeEmail.perform_async``); ``async def`` views run on the event loop and push
with the asyncio one (``await jobs.perform_async(...)``), which never blocks it.
"""

from __future__ import annotations

import html
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel

from roadie.contrib.fastapi import Roadie, RoadieClient, dashboard
from signup import db
from signup.jobs import PackagePickedUpSms, ProfileReminder, WelcomeEmail
from signup.settings import settings

rd = Roadie()  # Redis from REDIS_URL (or ROADIE_REDIS_URL, roadie.toml)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    db.init()
    async with rd.lifespan(app):
        yield


app = FastAPI(title="Signup", lifespan=lifespan)


def local_only(request: Request) -> bool:
    """Who may see roadie's dashboard. The example lets in this machine only; a real
    site checks its own login here (see docs/fastapi.md)."""
    return request.client is not None and request.client.host in ("127.0.0.1", "::1")


# roadie's dashboard (queues, retries, the periodic rates job...) at /roadie/.
app.mount("/roadie", dashboard(require=local_only))


# --- pages -----------------------------------------------------------------
def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:44em;margin:2em auto}"
        "td,th{padding:.2em .8em;text-align:left}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def when(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC") if at else "-"


def rates_table() -> str:
    latest = db.latest_rates()
    if latest is None:
        return "<p>No exchange rates yet: the first fetch is on its way.</p>"
    rows = "".join(f"<tr><td>{c}</td><td>{v}</td></tr>" for c, v in latest["rates"].items())
    return (f"<h2>Rates for 1 {latest['base']}</h2><table>{rows}</table>"
            f"<p>fetched at {when(latest['fetched_at'])} ({latest['fetches']} fetches)</p>")


@app.get("/", response_class=HTMLResponse)
def home() -> HTMLResponse:
    users = "".join(
        f"<tr><td><a href='/users/{u['id']}'>{html.escape(u['name'])}</a></td>"
        f"<td>{when(u['welcomed_at'])}</td><td>{u['reminder'] or '-'}</td></tr>"
        for u in db.list_users()
    )
    return page("Signup", f"""
      <form method="post" action="/signup">
        <p><label>Email <input name="email" type="email" required></label></p>
        <p><label>Name <input name="name" required></label></p>
        <p><label>Phone <input name="phone" placeholder="+33 6 ..."></label></p>
        <p><button>Sign up</button></p>
      </form>
      <h2>Users</h2>
      <table><tr><th>name</th><th>welcomed</th><th>profile reminder</th></tr>{users}</table>
      {rates_table()}""")


@app.post("/signup")
def signup(
    email: Annotated[str, Form()], name: Annotated[str, Form()],
    phone: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    try:
        user_id = db.create_user(email.strip().lower(), name.strip(), phone or None)
    except sqlite3.IntegrityError:
        raise HTTPException(409, f"{email} has already signed up") from None
    # The row is committed (create_user's transaction is over): a job that runs at once
    # finds it. Inside a transaction, push after its commit instead.
    WelcomeEmail.perform_async(user_id)
    ProfileReminder.perform_in(settings.reminder_delay_s, user_id)
    return RedirectResponse(f"/users/{user_id}", status_code=303)


@app.get("/users/{user_id}", response_class=HTMLResponse)
def user_page(user_id: int) -> HTMLResponse:
    user = db.get_user(user_id)
    if user is None:
        raise HTTPException(404, "no such user")
    return page(f"Hello, {user['name']}", f"""
      <p>A welcome email is on its way to {html.escape(user['email'])}.</p>
      <form method="post" action="/users/{user_id}/profile">
        <p><label>About you<br><textarea name="bio">{html.escape(user['bio'] or '')}</textarea>
        </label></p><p><button>Save profile</button></p>
      </form><p><a href="/">home</a></p>""")


@app.post("/users/{user_id}/profile")
def save_profile(user_id: int, bio: Annotated[str, Form()]) -> RedirectResponse:
    if not db.complete_profile(user_id, bio):
        raise HTTPException(404, "no such user")
    return RedirectResponse(f"/users/{user_id}", status_code=303)


# --- webhooks and JSON -----------------------------------------------------
class PackageEvent(BaseModel):
    user_id: int
    tracking_number: str


@app.post("/webhooks/package-picked-up", status_code=202)
async def package_picked_up(event: PackageEvent, jobs: RoadieClient) -> dict[str, Any]:
    # A carrier's webhook wants a fast 2xx; the SMS provider may be slow or down.
    # (A real endpoint checks the carrier's signature first.)
    jid = await jobs.perform_async(PackagePickedUpSms, event.user_id, event.tracking_number)
    return {"accepted": True, "jid": jid}


@app.get("/api/users")
def api_users() -> list[dict[str, Any]]:
    return db.list_users()


@app.get("/api/rates")
def api_rates() -> dict[str, Any]:
    latest = db.latest_rates()
    if latest is None:
        raise HTTPException(404, "no rates fetched yet")
    return latest


@app.get("/health")
async def health() -> dict[str, Any]:
    return {"ok": True, "at": time.time()}
