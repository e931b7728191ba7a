"""job.py: class options, names, @roadie.job, set(), and what a push hands to the
client (no Redis)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import roadie
from roadie.errors import JobDefinitionError
from roadie.job import Job, JobFunction, JobSetter, job
from roadie.registry import Registry, default_registry
from unit.unit_support import REG, Mail, Recorder

# --- options -------------------------------------------------------------------


def test_class_keywords_become_options(reg: Registry) -> None:
    class Mail(Job, registry=reg, queue="mail", retry=5, tags=("a", "b"), custom="kept"):
        def perform(self, user_id: int) -> None: ...

    assert Mail.options == {"queue": "mail", "retry": 5, "tags": ["a", "b"], "custom": "kept"}
    assert Mail.registry is reg
    assert Job.options == {}


def test_options_merge_with_the_parent(reg: Registry) -> None:
    class Base(Job, registry=reg, abstract=True, queue="low", retry=3, backtrace=True):
        pass

    class Child(Base, queue="high", dead=False):
        def perform(self) -> None: ...

    assert Child.options == {"queue": "high", "retry": 3, "backtrace": True, "dead": False}
    assert Base.options == {"queue": "low", "retry": 3, "backtrace": True}
    assert Child.registry is reg
    assert "Child" in reg.names()[0]
    assert not any("Base" in n for n in reg.names())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue": ""}, "queue must be a non-empty string, got ''"),
        ({"queue": 3}, "queue must be a non-empty string, got 3"),
        ({"retry": "yes"}, "retry must be True, False or a number of retries >= 0, got 'yes'"),
        ({"retry": -1}, "retry must be True, False or a number of retries >= 0, got -1"),
        ({"retry": 1.5}, "retry must be"),
        ({"retry_queue": ""}, "retry_queue must be a non-empty string"),
        ({"dead": "no"}, "dead must be True or False"),
        ({"backtrace": "all"}, "backtrace must be a bool or a number of lines"),
        ({"tags": "urgent"}, "tags must be a list of strings"),
        ({"tags": ["ok", 3]}, "tags must be a list of strings"),
    ],
)
def test_invalid_options_raise(reg: Registry, options: dict[str, Any], message: str) -> None:
    with pytest.raises(JobDefinitionError, match=message) as info:

        class Bad(Job, registry=reg, **options):
            def perform(self) -> None: ...

    assert "test_job" in str(info.value)  # names the class's module
    assert reg.names() == []


def test_retry_zero_is_kept_as_zero(reg: Registry) -> None:
    class Once(Job, registry=reg, retry=0):
        def perform(self) -> None: ...

    assert Once.options["retry"] == 0
    assert Once.options["retry"] is not False
    assert type(Once.options["retry"]) is int


def test_retry_bools_are_valid(reg: Registry) -> None:
    class Never(Job, registry=reg, retry=False):
        def perform(self) -> None: ...

    assert Never.options["retry"] is False


# --- names and the registry -----------------------------------------------------


def test_default_name_is_module_and_qualname(reg: Registry) -> None:
    class Resize(Job, registry=reg):
        def perform(self) -> None: ...

    expected = f"{__name__}.test_default_name_is_module_and_qualname.<locals>.Resize"
    assert Resize.name == expected
    assert reg.get(expected) is Resize
    assert expected in reg


def test_custom_name(reg: Registry) -> None:
    class Resize(Job, registry=reg, name="ResizeImage"):
        def perform(self) -> None: ...

    assert Resize.name == "ResizeImage"
    assert reg.get("ResizeImage") is Resize
    assert reg.find("ResizeImage") is Resize
    assert reg.names() == ["ResizeImage"]


def test_a_class_without_perform_raises(reg: Registry) -> None:
    with pytest.raises(JobDefinitionError, match=r"NoPerform must define perform\(self, ...\)"):

        class NoPerform(Job, registry=reg):
            pass

    assert reg.names() == []


def test_is_async(reg: Registry) -> None:
    class Sync(Job, registry=reg):
        def perform(self) -> None: ...

    class Async(Job, registry=reg):
        async def perform(self) -> None: ...

    assert Sync.is_async is False
    assert Async.is_async is True


def test_abstract_base_is_not_registered(reg: Registry) -> None:
    class Base(Job, registry=reg, abstract=True):
        pass

    assert reg.names() == []
    assert Base.name == "roadie.Job"


def test_default_hooks_of_a_job(reg: Registry) -> None:
    class Plain(Job, registry=reg):
        def perform(self) -> None: ...

    exc = ValueError("x")
    assert Plain.retry_in(0, exc, {}) is None
    assert Plain.retries_exhausted({}, exc) is None
    with pytest.raises(NotImplementedError):
        Job().perform()


# --- set() -------------------------------------------------------------------------


def test_set_returns_a_setter_with_merged_options(reg: Registry) -> None:
    class Mail(Job, registry=reg, name="Mail", queue="mail", retry=3):
        def perform(self, n: int, s: str) -> None: ...

    setter = Mail.set(queue="critical", tags=("x",))
    assert isinstance(setter, JobSetter)
    assert setter.name == "Mail"
    assert setter.options == {"queue": "critical", "retry": 3, "tags": ["x"]}
    assert Mail.options == {"queue": "mail", "retry": 3}
    assert setter.item([1, "a"]) == {
        "queue": "critical", "retry": 3, "tags": ["x"], "args": [1, "a"], "class": "Mail",
    }


def test_set_validates(reg: Registry) -> None:
    class Mail(Job, registry=reg, name="Mail"):
        def perform(self) -> None: ...

    with pytest.raises(JobDefinitionError, match="Mail: retry must be"):
        Mail.set(retry="often")


# --- @roadie.job -----------------------------------------------------------------


def test_job_decorator_on_a_sync_function(reg: Registry) -> None:
    @job(registry=reg, queue="mail", retry=2)
    def send_welcome(user_id: int, greeting: str = "hi") -> str:
        """Sends a welcome."""
        return f"{greeting} {user_id}"

    assert isinstance(send_welcome, JobFunction)
    assert send_welcome(7) == "hi 7"
    assert send_welcome(7, greeting="yo") == "yo 7"
    where = f"{__name__}.test_job_decorator_on_a_sync_function.<locals>"
    assert send_welcome.name == f"{where}.send_welcome"
    assert send_welcome.__doc__ == "Sends a welcome."
    cls = send_welcome.job_cls
    assert issubclass(cls, Job)
    assert cls.options == {"queue": "mail", "retry": 2}
    assert cls.is_async is False
    assert reg.get(send_welcome.name) is cls
    assert cls().perform(5, "hey") == "hey 5"


def test_job_decorator_on_an_async_function(reg: Registry) -> None:
    import asyncio

    @job(registry=reg, name="AsyncJob")
    async def fetch(url: str) -> str:
        return url.upper()

    assert fetch.name == "AsyncJob"
    assert fetch.job_cls.is_async is True
    assert asyncio.run(fetch("a")) == "A"
    assert asyncio.run(fetch.job_cls().perform("b")) == "B"


def test_job_decorator_set(reg: Registry) -> None:
    @job(registry=reg, name="Notify", queue="low")
    def notify(x: int) -> None: ...

    setter = notify.set(queue="high", retry=0)
    assert isinstance(setter, JobSetter)
    assert setter.name == "Notify"
    assert setter.options == {"queue": "high", "retry": 0}


def test_job_decorator_bare_uses_the_default_registry() -> None:
    @roadie.job
    def bare_job_for_test() -> int:
        return 42

    try:
        assert bare_job_for_test() == 42
        assert default_registry.get(bare_job_for_test.name) is bare_job_for_test.job_cls
    finally:
        default_registry.unregister(bare_job_for_test.name)


def test_job_decorator_bad_option(reg: Registry) -> None:
    with pytest.raises(JobDefinitionError, match="queue must be a non-empty string"):

        @job(registry=reg, queue="")
        def broken() -> None: ...


# --- pushes: what perform_async / perform_in / perform_at / perform_bulk hand to the
# client (a Recorder: tests/integration checks how they reach Redis) --------------


@job(registry=REG, name="notify", queue="low")
def notify(user_id: int) -> None: ...


def test_perform_async(client: Recorder) -> None:
    assert Mail.perform_async(42, "hello") == "jid-1"
    assert client.pushed == [
        {"queue": "mail", "retry": 3, "args": [42, "hello"], "class": "Mail"}
    ]


def test_set_then_perform_async(client: Recorder) -> None:
    Mail.set(queue="critical", retry=0).perform_async(1)
    assert client.pushed == [{"queue": "critical", "retry": 0, "args": [1], "class": "Mail"}]


def test_perform_in_zero_or_negative_is_immediate(client: Recorder) -> None:
    Mail.perform_in(0, 1)
    Mail.perform_in(timedelta(seconds=-5), 2)
    assert ["at" in item for item in client.pushed] == [False, False]


def test_perform_at_a_past_time_drops_at(client: Recorder) -> None:
    # Sidekiq's rule: a time <= now is pushed at once, without "at".
    Mail.perform_at(datetime(2001, 1, 1, tzinfo=UTC), 1)
    Mail.perform_at(time.time() - 10, 2)
    assert all("at" not in item for item in client.pushed)


def test_perform_bulk(client: Recorder) -> None:
    jids = Mail.perform_bulk([[1], [2, "x"]], batch_size=50)
    assert jids == ["jid-0", "jid-1"]
    items, batch_size = client.bulk[0]
    assert batch_size == 50
    assert items == [
        {"queue": "mail", "retry": 3, "args": [1], "class": "Mail"},
        {"queue": "mail", "retry": 3, "args": [2, "x"], "class": "Mail"},
    ]


def test_items_do_not_share_option_dicts(client: Recorder) -> None:
    Mail.perform_async(1)
    client.pushed[0]["queue"] = "changed by middleware"
    Mail.perform_async(2)
    assert client.pushed[1]["queue"] == "mail"
    assert Mail.options["queue"] == "mail"


def test_job_function_pushes_like_a_job(client: Recorder) -> None:
    notify.perform_async(5)
    notify.set(queue="high").perform_async(6)
    notify.perform_in(60, 7)
    notify.perform_at(time.time() + 60, 8)
    notify.perform_bulk([[9]])
    assert [i["queue"] for i in client.pushed] == ["low", "high", "low", "low"]
    assert [i["args"] for i in client.pushed] == [[5], [6], [7], [8]]
    assert all(i["class"] == "notify" for i in client.pushed)
    assert ["at" in i for i in client.pushed] == [False, False, True, True]
    assert client.bulk[0][0] == [{"queue": "low", "args": [9], "class": "notify"}]
