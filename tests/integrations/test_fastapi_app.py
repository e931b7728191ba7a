"""The FastAPI integration against a real app and a real Redis: lifespan, the asyncio
client in ``async def`` views, the blocking client in ``def`` views, and proof that a
push waiting on Redis does not stall the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

import roadie
from roadie import aio
from roadie.config import Config
from roadie.contrib.fastapi import Roadie, RoadieClient
from roadie.embedded import RedisServer

pytestmark = pytest.mark.redis


class WelcomeEmail(roadie.Job, queue="mail", registry=roadie.Registry()):
    def perform(self, user_id: int) -> None: ...


class ProfileReminder(roadie.Job, registry=roadie.Registry()):
    def perform(self, user_id: int) -> None: ...


def make_app(rd: Roadie) -> FastAPI:
    app = FastAPI(lifespan=rd.lifespan)

    @app.post("/signup/{user_id}", status_code=201)
    async def signup(user_id: int, jobs: RoadieClient) -> dict[str, Any]:
        welcome = await jobs.perform_async(WelcomeEmail, user_id)
        reminder = await aio.perform_in(ProfileReminder, 86400, user_id)
        return {"welcome": welcome, "reminder": reminder}

    @app.post("/sync-signup/{user_id}", status_code=201)
    def sync_signup(user_id: int) -> dict[str, Any]:
        return {"welcome": WelcomeEmail.perform_async(user_id)}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def test_async_and_sync_views_push(config: Config, r: redis.Redis) -> None:
    app = make_app(Roadie(config))
    with TestClient(app) as http:
        assert isinstance(app.state.roadie, aio.AsyncClient)
        response = http.post("/signup/42")
        assert response.status_code == 201
        ids = response.json()
        sync = http.post("/sync-signup/43").json()
    queued = [orjson.loads(x) for x in r.lrange("queue:mail", 0, -1)]
    # LPUSH: the newest entry first.
    assert [(j["class"], j["args"], j["jid"]) for j in queued] == [
        (WelcomeEmail.name, [43], sync["welcome"]),
        (WelcomeEmail.name, [42], ids["welcome"]),
    ]
    [(raw, score)] = r.zrange("schedule", 0, -1, withscores=True)
    scheduled = orjson.loads(raw)
    assert (scheduled["class"], scheduled["args"], scheduled["jid"]) == (
        ProfileReminder.name, [42], ids["reminder"]
    )
    assert "enqueued_at" not in scheduled
    assert scheduled["created_at"] + 86400 == pytest.approx(score, abs=5)
    assert r.smembers("queues") == {b"mail"}


def test_lifespan_closes_the_loop_client(config: Config, r: redis.Redis) -> None:
    app = make_app(Roadie(config))
    with TestClient(app) as http:
        http.post("/signup/1")
        client = app.state.roadie
        assert client._redis is not None
    assert client._redis is None  # closed at shutdown
    # The next app (a new event loop) gets a new client that works.
    with TestClient(app) as http:
        assert http.post("/signup/2").status_code == 201
        assert app.state.roadie is not client
    assert r.llen("queue:mail") == 2


def test_check_fails_startup_when_redis_does_not_answer(r: redis.Redis) -> None:
    from roadie.embedded import free_port

    dead = Config(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_url_configured=True,
                  connect_timeout_s=1)
    app = make_app(Roadie(dead, check=True))
    with pytest.raises(roadie.RedisUnavailable, match=r"Redis at redis://127\.0\.0\.1:\d+/0 "
                       r"does not answer"), TestClient(app):
        pass


def test_check_passes_with_redis(config: Config, r: redis.Redis) -> None:
    app = make_app(Roadie(config, check=True))
    with TestClient(app) as http:
        assert http.get("/health").json() == {"status": "ok"}


def test_own_lifespan_wraps_roadies(config: Config, r: redis.Redis) -> None:
    rd = Roadie(config)
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("mine up")
        async with rd.lifespan(app):
            yield
        events.append("mine down")

    app = FastAPI(lifespan=lifespan)

    @app.post("/push")
    async def push() -> dict[str, str | None]:
        return {"jid": await aio.push("ResizeImage", [1, "large"], queue="ruby")}

    with TestClient(app) as http:
        jid = http.post("/push").json()["jid"]
    assert events == ["mine up", "mine down"]
    [raw] = r.lrange("queue:ruby", 0, -1)
    assert (orjson.loads(raw)["jid"], orjson.loads(raw)["args"]) == (jid, [1, "large"])


def test_a_push_waiting_on_redis_leaves_the_event_loop_free(
    redis_server: RedisServer,
) -> None:
    """Redis is frozen (SIGSTOP) while an async view pushes: the view waits, yet the
    same event loop answers another request; once Redis is back the push completes."""
    config = Config(redis_url=redis_server.url, redis_url_configured=True)
    rd = Roadie(config)
    app = make_app(rd)
    reached_push = threading.Event()

    def note(job_name: str, payload: dict[str, Any], queue: str,
             call_next: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        reached_push.set()  # the payload is ready: the write to Redis comes next
        return call_next()

    hooks = roadie.Hooks()
    hooks.client_middleware.append(note)
    roadie.configure(client=roadie.Client(config, hooks=hooks))

    async def scenario() -> tuple[int, dict[str, str], int]:
        transport = httpx.ASGITransport(app=app)
        async with rd.lifespan(app), httpx.AsyncClient(
            transport=transport, base_url="http://app"
        ) as http:
            # Connect while Redis still answers, so the push below waits on its reply.
            assert await (await aio.get_client().redis()).ping()
            redis_server.pause()
            try:
                signup = asyncio.create_task(http.post("/signup/7"))
                deadline = time.monotonic() + 5
                while not reached_push.is_set():
                    assert time.monotonic() < deadline, "the view never reached its push"
                    await asyncio.sleep(0.005)
                health = await asyncio.wait_for(http.get("/health"), timeout=3)
                assert not signup.done()
            finally:
                redis_server.resume()
            response = await asyncio.wait_for(signup, timeout=10)
            return health.status_code, health.json(), response.status_code

    assert asyncio.run(scenario()) == (200, {"status": "ok"}, 201)
    r = redis_server.client()
    assert [orjson.loads(x)["args"] for x in r.lrange("queue:mail", 0, -1)] == [[7]]
    assert r.zcard("schedule") == 1
