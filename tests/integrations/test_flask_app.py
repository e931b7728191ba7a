"""The Flask extension against the real example app (examples/flask_site) and a real
Redis: app-factory configuration, pushes from views, ``flask roadie run``."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import orjson
import pytest
import redis
from framework_support import EXAMPLES, PYTHON
from support.wait import wait_until

import roadie
from roadie.config import Config
from roadie.contrib.flask import Roadie

pytestmark = pytest.mark.redis

SITE = EXAMPLES / "flask_site"


def test_app_factory_reads_roadie_keys_of_app_config(
    shop: ModuleType, redis_url: str, r: redis.Redis
) -> None:
    app = shop.create_app({"ROADIE_REDIS_URL": redis_url, "ROADIE_NAMESPACE": "shop",
                      "ROADIE_CONCURRENCY": "3", "ROADIE_QUEUES": "mail,3 default"})
    client = app.extensions["roadie"]
    assert isinstance(client, roadie.Client)
    assert (client.config.redis_url, client.config.namespace, client.config.concurrency) == (
        redis_url, "shop", 3
    )
    assert client.config.queues == (("mail", 3), ("default", 0))
    assert roadie.get_client() is client  # perform_async uses the app's client
    with app.app_context():
        assert Roadie().client is client

    jid = app.test_client().post("/orders", json={"email": "a@example.com", "total_cents": 1})
    assert jid.status_code == 202
    assert r.keys("queue:*") == []
    [raw] = r.lrange("shop:queue:mail", 0, -1)
    assert orjson.loads(raw)["jid"] == jid.json["receipt_jid"]


def test_each_app_of_a_factory_has_its_own_client(
    shop: ModuleType, redis_url: str, r: redis.Redis
) -> None:
    first = shop.create_app({"ROADIE_REDIS_URL": redis_url, "ROADIE_NAMESPACE": "one"})
    second = shop.create_app({"ROADIE_REDIS_URL": redis_url, "ROADIE_NAMESPACE": "two"})
    assert first.extensions["roadie"] is not second.extensions["roadie"]
    assert first.extensions["roadie"].config.namespace == "one"
    assert second.extensions["roadie"].config.namespace == "two"
    first.extensions["roadie"].push({"class": "X", "args": [1]})
    assert sorted(r.keys("*")) == [b"one:queue:default", b"one:queues"]


def test_view_pushes_the_job(shop: ModuleType, redis_url: str, r: redis.Redis) -> None:
    app = shop.create_app({"ROADIE_REDIS_URL": redis_url})
    response = app.test_client().post("/orders",
                                      json={"email": "ada@example.com", "total_cents": 4200})
    assert response.status_code == 202
    [raw] = r.lrange("queue:mail", 0, -1)
    job = orjson.loads(raw)
    assert (job["class"], job["args"], job["jid"], job["queue"]) == (
        "shop.jobs.SendReceipt", [response.json["order_id"], "ada@example.com", 4200],
        response.json["receipt_jid"], "mail",
    )


def test_unknown_roadie_key_is_named(shop: ModuleType, redis_url: str) -> None:
    with pytest.raises(roadie.ConfigError, match=r"unknown roadie setting 'CONCURENCY' in "
                       r"app\.config"):
        shop.create_app({"ROADIE_REDIS_URL": redis_url, "ROADIE_CONCURENCY": 5})


def test_flask_roadie_run_runs_jobs_in_the_app_context(
    shop: ModuleType, redis_url: str, r: redis.Redis, config: Config, spawn, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    proc = spawn([PYTHON, "-m", "flask", "--app", "shop", "roadie", "run", "-c", "2",
                  "--log-level", "WARNING"], env={"SHOP_OUTBOX_DIR": str(outbox)}, cwd=SITE)
    wait_until(lambda: r.scard("processes") == 1, timeout=30, message="process registered")
    [identity] = r.smembers("processes")
    info = orjson.loads(r.hget(identity, "info"))
    assert (info["queues"], info["concurrency"]) == (["mail", "default"], 2)

    app = shop.create_app({"ROADIE_REDIS_URL": redis_url, "OUTBOX_DIR": "unused"})
    response = app.test_client().post("/orders",
                                      json={"email": "ada@example.com", "total_cents": 4200})
    receipt = outbox / f"receipt-{response.json['order_id']}.txt"
    wait_until(receipt.exists, timeout=30, message="receipt written")
    assert proc.stop() == 0
    assert receipt.read_text() == (
        f"To: ada@example.com\nOrder {response.json['order_id']}: 42.00 EUR. Thank you!\n"
    )
    assert (r.get("stat:processed"), r.get("stat:failed")) == (b"1", None)


def test_flask_roadie_check(r: redis.Redis, spawn) -> None:
    proc = spawn([PYTHON, "-m", "flask", "--app", "shop", "roadie", "check"], cwd=SITE)
    assert proc.popen.wait(60) == 0, proc.output()
    assert "redis" in proc.output().lower()
