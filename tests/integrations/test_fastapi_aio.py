"""``roadie.aio``, the asyncio client behind the FastAPI integration, on a real Redis:
it writes what the blocking client writes, through the same checks and middleware."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis

import roadie
from roadie import aio
from roadie.config import Config

pytestmark = pytest.mark.redis

registry = roadie.Registry()


class Receipt(roadie.Job, queue="mail", retry=3, tags=["shop"], registry=registry):
    def perform(self, order_id: int) -> None: ...


@roadie.job(queue="low", registry=registry)
def cleanup(days: int) -> None: ...


def entries(r: redis.Redis, key: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in r.lrange(key, 0, -1)]


def test_same_payload_as_the_blocking_client(config: Config, r: redis.Redis) -> None:
    roadie.configure(config)
    sync_jid = Receipt.perform_async(1)
    async_jid = asyncio.run(aio.perform_async(Receipt, 2))
    newest, oldest = entries(r, "queue:mail")
    assert (oldest["jid"], newest["jid"]) == (sync_jid, async_jid)
    assert sorted(newest) == sorted(oldest)
    for key in ("class", "queue", "retry", "tags"):
        assert newest[key] == oldest[key]
    assert (oldest["args"], newest["args"]) == ([1], [2])
    assert newest["created_at"] <= newest["enqueued_at"] <= time.time()


def test_every_verb(config: Config, r: redis.Redis) -> None:
    roadie.configure(config)

    async def main() -> dict[str, Any]:
        past = datetime.now(UTC) - timedelta(hours=1)
        return {
            "set": await aio.perform_async(Receipt.set(queue="critical"), 3),
            "fn": await aio.perform_async(cleanup, 30),
            "in": await aio.perform_in(Receipt, timedelta(minutes=5), 4),
            "past": await aio.perform_at(Receipt, past, 5),
            "bulk": await aio.perform_bulk(Receipt, [[6], [7], [8]], batch_size=2),
            "named": await aio.push("Ruby::Job", args=["x"], queue="ruby", retry=False),
        }

    before = time.time()
    jids = asyncio.run(main())
    assert [(j["args"], j["jid"]) for j in entries(r, "queue:critical")] == [([3], jids["set"])]
    assert [(j["args"], j["jid"], j["class"]) for j in entries(r, "queue:low")] == [
        ([30], jids["fn"], cleanup.name)
    ]
    [(raw, score)] = r.zrange("schedule", 0, -1, withscores=True)
    assert orjson.loads(raw)["jid"] == jids["in"]
    assert before + 300 <= score <= time.time() + 300
    mail = entries(r, "queue:mail")
    assert [j["args"] for j in mail] == [[8], [7], [6], [5]]  # LPUSH order: newest first
    assert [j["jid"] for j in mail] == [*reversed(jids["bulk"]), jids["past"]]
    assert len({j["created_at"] for j in mail[:3]}) == 1  # one created_at per bulk push
    [ruby] = entries(r, "queue:ruby")
    assert (ruby["class"], ruby["args"], ruby["retry"], ruby["jid"]) == (
        "Ruby::Job", ["x"], False, jids["named"]
    )
    assert r.smembers("queues") == {b"critical", b"low", b"mail", b"ruby"}


def test_bad_argument_writes_nothing(config: Config, r: redis.Redis) -> None:
    roadie.configure(config)

    async def main() -> None:
        with pytest.raises(roadie.ArgumentTypeError, match=r"args\[0\]\['when'\]"):
            await aio.perform_bulk(Receipt, [[1], [{"when": datetime.now(UTC)}]])

    asyncio.run(main())
    assert r.keys("*") == []


def test_client_middleware_runs_and_may_drop(config: Config, r: redis.Redis) -> None:
    seen: list[tuple[str, str]] = []

    def tenant(job_name: str, payload: dict[str, Any], queue: str,
               call_next: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        seen.append((job_name, queue))
        if payload["args"] == [0]:
            return None
        payload["tenant"] = "acme"
        return call_next()

    hooks = roadie.Hooks()
    hooks.client_middleware.append(tenant)
    roadie.configure(client=roadie.Client(config, hooks=hooks))

    async def main() -> tuple[str | None, str | None]:
        return await aio.perform_async(Receipt, 0), await aio.perform_async(Receipt, 1)

    dropped, kept = asyncio.run(main())
    assert dropped is None
    [job] = entries(r, "queue:mail")
    assert (job["jid"], job["tenant"]) == (kept, "acme")
    assert seen == [(Receipt.name, "mail"), (Receipt.name, "mail")]


def test_one_client_per_event_loop(config: Config, r: redis.Redis) -> None:
    roadie.configure(config)

    async def main() -> aio.AsyncClient:
        client = aio.get_client()
        assert aio.get_client() is client
        await aio.perform_async(Receipt, 1)
        return client

    first = asyncio.run(main())
    second = asyncio.run(main())  # a closed loop's connections are not reused
    assert first is not second
    roadie.configure(config)

    async def after_configure() -> aio.AsyncClient:
        client = aio.get_client()
        await aio.perform_async(Receipt, 2)
        await aio.close()
        return client

    third = asyncio.run(after_configure())
    assert third.client is roadie.get_client()
    assert r.llen("queue:mail") == 3


def test_embedded_url(tmp_path: Any) -> None:
    from roadie.embedded import EmbeddedRedis

    folder = tmp_path / "emb"
    config = Config(redis_url=f"embedded://{folder}", redis_url_configured=True)
    client = aio.AsyncClient(roadie.Client(config))

    async def main() -> str | None:
        try:
            return await client.perform_async(Receipt, 9)
        finally:
            await client.aclose()

    try:
        jid = asyncio.run(main())
        raw = redis.Redis.from_url(EmbeddedRedis(folder).url).lpop("queue:mail")
        assert orjson.loads(raw)["jid"] == jid
    finally:
        EmbeddedRedis(folder).stop()


def test_fake_and_inline_modes_take_aio_pushes(config: Config, r: redis.Redis) -> None:
    import roadie.testing

    ran: list[int] = []

    class Audit(roadie.Job, registry=registry):
        def perform(self, n: int) -> None:
            ran.append(n)

    with roadie.testing.fake(registry=registry):
        jid = asyncio.run(aio.perform_async(Audit, 1))
        assert [(j["jid"], j["args"]) for j in Audit.jobs] == [(jid, [1])]
        with pytest.raises(roadie.ArgumentTypeError):
            asyncio.run(aio.perform_async(Audit, object()))
        assert roadie.testing.drain() == 1
    with roadie.testing.inline(registry=registry):
        asyncio.run(aio.perform_in(Audit, 60, 2))
    assert ran == [1, 2]
    assert r.keys("*") == []
