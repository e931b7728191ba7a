"""job.py and registry.py: class options, names, the registry, @roadie.job (no Redis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import roadie
from roadie.errors import JobDefinitionError, UnknownJobError
from roadie.job import Job, JobFunction, JobSetter, job
from roadie.pushcheck import to_epoch, to_seconds
from roadie.registry import Registry, default_registry


@pytest.fixture
def reg() -> Registry:
    return Registry()


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


def test_two_classes_with_one_name_raise(reg: Registry) -> None:
    class First(Job, registry=reg, name="Shared"):
        def perform(self) -> None: ...

    with pytest.raises(JobDefinitionError) as info:

        class Second(Job, registry=reg, name="Shared"):
            def perform(self) -> None: ...

    msg = str(info.value)
    assert "two job classes claim the name 'Shared'" in msg
    assert "First" in msg and "Second" in msg
    assert "name='...'" in msg
    assert reg.get("Shared") is First


def test_redefining_the_same_class_replaces_it_silently(reg: Registry) -> None:
    defined = []
    for _ in range(2):

        class Again(Job, registry=reg):
            def perform(self) -> None: ...

        defined.append(Again)
    assert defined[0] is not defined[1]
    assert reg.get(defined[1].name) is defined[1]
    assert len(reg.names()) == 1


def test_registering_the_same_class_twice_is_fine(reg: Registry) -> None:
    class Twice(Job, registry=reg, name="Twice"):
        def perform(self) -> None: ...

    reg.register("Twice", Twice)
    assert reg.get("Twice") is Twice


def test_unknown_job(reg: Registry) -> None:
    message = r"^unknown job class HardJob; is its module loaded with -r\?$"
    with pytest.raises(UnknownJobError, match=message):
        reg.get("HardJob")
    assert reg.find("HardJob") is None
    assert "HardJob" not in reg


def test_unregister(reg: Registry) -> None:
    class Gone(Job, registry=reg, name="Gone"):
        def perform(self) -> None: ...

    reg.unregister("Gone")
    reg.unregister("Gone")  # twice is fine
    assert "Gone" not in reg


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


# --- time helpers ----------------------------------------------------------------


def test_to_seconds() -> None:
    assert to_seconds(timedelta(minutes=2, milliseconds=500)) == 120.5
    assert to_seconds(30) == 30.0
    assert isinstance(to_seconds(30), float)
    assert to_seconds(1.25) == 1.25


def test_to_epoch() -> None:
    when = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert to_epoch(when) == when.timestamp() == 1795867200.0
    plus_two = datetime(2026, 11, 28, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert to_epoch(plus_two) == 1795867200.0
    assert to_epoch(1795867200) == 1795867200.0
    assert isinstance(to_epoch(1795867200), float)
    assert to_epoch(1795867200.5) == 1795867200.5


@pytest.mark.parametrize("bad", ["10", "2026-11-28", None, True, [1]])
def test_time_helpers_refuse_other_types(bad: Any) -> None:
    with pytest.raises(TypeError, match="must be seconds or a timedelta"):
        to_seconds(bad)
    with pytest.raises(TypeError, match="must be a datetime or epoch seconds"):
        to_epoch(bad)
