"""The Django integration against the real example site (examples/django_site), a real
sqlite database and a real Redis: push-at-commit, settings, ``manage.py roadie``."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
import redis
from django.db import transaction
from django.test import Client as DjangoClient
from framework_support import EXAMPLES, PYTHON
from support.wait import wait_until

import roadie
import roadie.current
from roadie.contrib import _settings

pytestmark = pytest.mark.redis

SITE = EXAMPLES / "django_site"


def mail_jobs(r: redis.Redis) -> list[dict[str, object]]:
    return [orjson.loads(raw) for raw in r.lrange("queue:mail", 0, -1)]


def test_settings_configure_the_default_client(django_site: SimpleNamespace,
                                               redis_url: str) -> None:
    from django.apps import apps

    with roadie.current.using(None):
        apps.get_app_config("roadie").ready()
        config = roadie.get_client().config
    assert config.redis_url == redis_url
    assert config.queues == (("mail", 2), ("default", 0))
    assert config.concurrency == 5


def test_push_inside_atomic_reaches_redis_only_after_commit(
    site: SimpleNamespace, r: redis.Redis
) -> None:
    from accounts.jobs import WelcomeEmail
    from accounts.models import Account

    with transaction.atomic():
        account = Account.objects.create(email="ada@example.com", name="Ada")
        jid = WelcomeEmail.perform_async_on_commit(account.id)
        assert r.llen("queue:mail") == 0
        assert r.exists("queues") == 0
    jobs = mail_jobs(r)
    assert [(j["class"], j["args"], j["jid"], j["queue"]) for j in jobs] == [
        ("accounts.jobs.WelcomeEmail", [account.id], jid, "mail")
    ]
    assert r.smembers("queues") == {b"mail"}


def test_rollback_pushes_nothing(site: SimpleNamespace, r: redis.Redis) -> None:
    from accounts.jobs import WelcomeEmail
    from accounts.models import Account

    with pytest.raises(RuntimeError, match="payment declined"), transaction.atomic():
        account = Account.objects.create(email="ada@example.com", name="Ada")
        WelcomeEmail.perform_async_on_commit(account.id)
        raise RuntimeError("payment declined")
    assert Account.objects.count() == 0
    assert r.keys("*") == []


def test_savepoint_rollback_drops_only_its_own_jobs(site: SimpleNamespace,
                                                     r: redis.Redis) -> None:
    from accounts.jobs import WelcomeEmail
    from accounts.models import Account

    with transaction.atomic():
        kept = Account.objects.create(email="ada@example.com", name="Ada")
        WelcomeEmail.perform_async_on_commit(kept.id)
        try:
            with transaction.atomic():
                dropped = Account.objects.create(email="bob@example.com", name="Bob")
                WelcomeEmail.perform_async_on_commit(dropped.id)
                raise ValueError("inner")
        except ValueError:
            pass
    assert [j["args"] for j in mail_jobs(r)] == [[kept.id]]


def test_plain_perform_async_inside_atomic_is_visible_before_commit(
    site: SimpleNamespace, r: redis.Redis
) -> None:
    """The classic bug the *_on_commit functions exist for: a process could fetch this
    job while the row it names is not committed yet."""
    from accounts.jobs import WelcomeEmail
    from accounts.models import Account

    with transaction.atomic():
        account = Account.objects.create(email="ada@example.com", name="Ada")
        WelcomeEmail.perform_async(account.id)
        assert r.llen("queue:mail") == 1


def test_outside_a_transaction_the_push_is_immediate(site: SimpleNamespace,
                                                     r: redis.Redis) -> None:
    from accounts.jobs import WelcomeEmail

    from roadie.contrib.django import perform_async_on_commit, push_on_commit

    perform_async_on_commit(WelcomeEmail.set(queue="critical"), 7)
    push_on_commit("ResizeImage", [3, "large"], queue="ruby", retry=2)
    critical = [orjson.loads(x) for x in r.lrange("queue:critical", 0, -1)]
    ruby = [orjson.loads(x) for x in r.lrange("queue:ruby", 0, -1)]
    assert [(j["class"], j["args"]) for j in critical] == [("accounts.jobs.WelcomeEmail", [7])]
    assert [(j["class"], j["args"], j["retry"]) for j in ruby] == [
        ("ResizeImage", [3, "large"], 2)
    ]


def test_perform_in_on_commit_schedules_at_commit(site: SimpleNamespace,
                                                  r: redis.Redis) -> None:
    from accounts.jobs import WelcomeEmail

    before = time.time()
    with transaction.atomic():
        jid = WelcomeEmail.perform_in_on_commit(3600, 5)
        assert r.zcard("schedule") == 0
    after = time.time()
    [(raw, score)] = r.zrange("schedule", 0, -1, withscores=True)
    job = orjson.loads(raw)
    assert (job["jid"], job["args"]) == (jid, [5])
    assert before + 3600 <= score <= after + 3600


def test_bad_argument_raises_in_the_caller(site: SimpleNamespace, r: redis.Redis) -> None:
    from accounts.jobs import WelcomeEmail
    from accounts.models import Account

    with transaction.atomic():
        account = Account.objects.create(email="ada@example.com", name="Ada")
        with pytest.raises(roadie.ArgumentTypeError, match=r"args\[0\]"):
            WelcomeEmail.perform_async_on_commit(account)
    assert Account.objects.count() == 1
    assert r.keys("*") == []


def test_signup_view_pushes_at_the_request_commit(site: SimpleNamespace,
                                                  r: redis.Redis) -> None:
    from accounts.models import Account

    response = DjangoClient().post("/signup", {"email": "ada@example.com", "name": "Ada"})
    assert response.status_code == 201
    body = response.json()
    account = Account.objects.get(email="ada@example.com")
    assert body["id"] == account.id
    assert [(j["args"], j["jid"]) for j in mail_jobs(r)] == [([account.id], body["jid"])]


def test_manage_py_roadie_run_processes_the_committed_signup(
    site: SimpleNamespace, r: redis.Redis, spawn, tmp_path: Path
) -> None:
    from accounts.models import Account

    proc = spawn([PYTHON, "manage.py", "roadie", "run", "--log-level", "WARNING"],
                 env=site.env, cwd=SITE)
    wait_until(lambda: r.scard("processes") == 1, timeout=30, message="process registered")
    [identity] = r.smembers("processes")
    # settings.ROADIE reached the process: its queues and concurrency.
    info = orjson.loads(r.hget(identity, "info"))
    assert (info["queues"], info["concurrency"]) == (["mail", "default"], 5)

    response = DjangoClient().post("/signup", {"email": "grace@example.com", "name": "Grace"})
    assert response.status_code == 201
    account_id = response.json()["id"]
    wait_until(lambda: Account.objects.get(id=account_id).welcomed_at is not None,
               timeout=30, message="welcome email sent")
    assert proc.stop() == 0
    [mail] = list(site.mail_dir.iterdir())
    text = mail.read_text()
    assert "Subject: Welcome!" in text
    assert "To: grace@example.com" in text
    assert "Hi Grace, welcome aboard." in text
    mail.unlink()
    assert (r.get("stat:processed"), r.get("stat:failed")) == (b"1", None)
    assert (r.zcard("retry"), r.zcard("dead")) == (0, 0)


def test_manage_py_roadie_check(site: SimpleNamespace, spawn) -> None:
    proc = spawn([PYTHON, "manage.py", "roadie", "check"], env=site.env, cwd=SITE)
    assert proc.popen.wait(60) == 0, proc.output()


def test_unknown_setting_is_named() -> None:
    with pytest.raises(roadie.ConfigError, match=r"unknown roadie setting 'REDIS_ULR' in "
                       r"settings\.ROADIE"):
        _settings.build_config({"REDIS_ULR": "redis://x"}, "settings.ROADIE")
    with pytest.raises(roadie.ConfigError, match=r"settings\.ROADIE \(CONCURRENCY\)"):
        _settings.build_config({"CONCURRENCY": "many"}, "settings.ROADIE")


def test_none_means_not_set(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    config = _settings.build_config({"REDIS_URL": None, "NAMESPACE": None}, "settings.ROADIE")
    assert (config.redis_url, config.namespace) == (redis_url, "")
    assert _settings.to_env({"REDIS_URL": None}, "settings.ROADIE") == {}


def test_settings_become_roadie_run_environment() -> None:
    env = _settings.to_env(
        {"REDIS_URL": "redis://h/1", "QUEUES": ["mail,2", "default"], "CONCURRENCY": 4,
         "require": ["a.jobs", "b.jobs"], "poll_interval_fixed_s": None},
        "settings.ROADIE",
    )
    assert env == {
        "ROADIE_REDIS_URL": "redis://h/1",
        "ROADIE_QUEUES": "mail,2 default",
        "ROADIE_CONCURRENCY": "4",
        "ROADIE_REQUIRE": "a.jobs b.jobs",
    }
    from roadie.config import read_env

    assert read_env(env) == {
        "redis_url": "redis://h/1",
        "queues": (("mail", 2), ("default", 0)),
        "concurrency": 4,
        "require": ("a.jobs", "b.jobs"),
    }
