"""middleware.py: client/server chains, error and death handlers, lifecycle (no Redis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from roadie.middleware import LIFECYCLE_EVENTS, Hooks

Payload = dict[str, Any]


def job_payload() -> Payload:
    return {"class": "HardJob", "args": [1], "queue": "default"}


# --- client chain ------------------------------------------------------------------


def test_client_chain_without_middleware_returns_the_payload() -> None:
    p = job_payload()
    assert Hooks().run_client("HardJob", p, "default") is p


def test_client_chain_order_and_arguments() -> None:
    hooks = Hooks()
    calls: list[Any] = []

    def make(tag: str) -> Callable[..., Payload | None]:
        def mw(name: str, p: Payload, queue: str, call_next: Callable[[], Payload | None]) -> Any:
            calls.append((tag, "before", name, queue))
            result = call_next()
            calls.append((tag, "after"))
            return result

        return mw

    hooks.client_middleware += [make("a"), make("b"), make("c")]
    p = job_payload()
    assert hooks.run_client("HardJob", p, "mail") is p
    assert calls == [
        ("a", "before", "HardJob", "mail"),
        ("b", "before", "HardJob", "mail"),
        ("c", "before", "HardJob", "mail"),
        ("c", "after"),
        ("b", "after"),
        ("a", "after"),
    ]


def test_client_middleware_mutates_the_payload() -> None:
    hooks = Hooks()

    def tenant(name: str, p: Payload, queue: str, call_next: Callable[[], Any]) -> Any:
        p["tenant"] = "acme"
        return call_next()

    def sees_tenant(name: str, p: Payload, queue: str, call_next: Callable[[], Any]) -> Any:
        p["seen"] = p.get("tenant")
        return call_next()

    hooks.client_middleware += [tenant, sees_tenant]
    out = hooks.run_client("HardJob", job_payload(), "default")
    assert out is not None
    assert out["tenant"] == "acme" and out["seen"] == "acme"


def test_client_middleware_drops_the_job() -> None:
    hooks = Hooks()
    later: list[str] = []

    def drop(name: str, p: Payload, queue: str, call_next: Callable[[], Any]) -> None:
        return None

    def never(name: str, p: Payload, queue: str, call_next: Callable[[], Any]) -> Any:
        later.append(name)
        return call_next()

    hooks.client_middleware += [drop, never]
    assert hooks.run_client("HardJob", job_payload(), "default") is None
    assert later == []


def test_client_middleware_inner_drop_reaches_the_caller() -> None:
    hooks = Hooks()

    def passthrough(name: str, p: Payload, queue: str, call_next: Callable[[], Any]) -> Any:
        return call_next()

    def drop(name: str, p: Payload, queue: str, call_next: Callable[[], Any]) -> None:
        return None

    hooks.client_middleware += [passthrough, drop]
    assert hooks.run_client("HardJob", job_payload(), "default") is None


def test_client_middleware_exception_propagates() -> None:
    hooks = Hooks()

    def bad(name: str, p: Payload, queue: str, call_next: Callable[[], Any]) -> Any:
        raise RuntimeError("refused")

    hooks.client_middleware.append(bad)
    with pytest.raises(RuntimeError, match="refused"):
        hooks.run_client("HardJob", job_payload(), "default")


# --- server chain ----------------------------------------------------------------------


def test_server_chain_without_middleware_calls_final() -> None:
    ran: list[int] = []
    Hooks().run_server(object(), job_payload(), "default", lambda: ran.append(1))  # type: ignore[arg-type]
    assert ran == [1]


def test_server_chain_order() -> None:
    hooks = Hooks()
    calls: list[str] = []
    job = object()

    def make(tag: str) -> Callable[..., None]:
        def mw(j: Any, p: Payload, queue: str, call_next: Callable[[], None]) -> None:
            assert j is job and queue == "mail"
            calls.append(f"{tag}>")
            call_next()
            calls.append(f"<{tag}")

        return mw

    hooks.server_middleware += [make("a"), make("b")]
    hooks.run_server(job, job_payload(), "mail", lambda: calls.append("perform"))  # type: ignore[arg-type]
    assert calls == ["a>", "b>", "perform", "<b", "<a"]


def test_server_middleware_can_skip_the_job() -> None:
    hooks = Hooks()
    ran: list[int] = []

    def skip(j: Any, p: Payload, queue: str, call_next: Callable[[], None]) -> None:
        return None

    hooks.server_middleware.append(skip)
    hooks.run_server(object(), job_payload(), "default", lambda: ran.append(1))  # type: ignore[arg-type]
    assert ran == []


def test_server_chain_exceptions_propagate_through_middleware() -> None:
    hooks = Hooks()
    seen: list[str] = []

    def watcher(j: Any, p: Payload, queue: str, call_next: Callable[[], None]) -> None:
        try:
            call_next()
        except ValueError as exc:
            seen.append(str(exc))
            raise

    def final() -> None:
        raise ValueError("perform failed")

    hooks.server_middleware.append(watcher)
    with pytest.raises(ValueError, match="perform failed"):
        hooks.run_server(object(), job_payload(), "default", final)  # type: ignore[arg-type]
    assert seen == ["perform failed"]


def test_server_middleware_own_exception_propagates() -> None:
    hooks = Hooks()

    def bad(j: Any, p: Payload, queue: str, call_next: Callable[[], None]) -> None:
        raise KeyError("mw")

    hooks.server_middleware.append(bad)
    with pytest.raises(KeyError):
        hooks.run_server(object(), job_payload(), "default", lambda: None)  # type: ignore[arg-type]


# --- error and death handlers -------------------------------------------------------------


def test_error_handlers_all_called_even_if_one_raises(caplog: pytest.LogCaptureFixture) -> None:
    hooks = Hooks()
    got: list[Any] = []

    def broken(exc: BaseException, ctx: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    hooks.error_handlers += [
        lambda exc, ctx: got.append(("first", exc, ctx["queue"])),
        broken,
        lambda exc, ctx: got.append(("last", exc, ctx["queue"])),
    ]
    err = ValueError("job failed")
    hooks.report_error(err, {"job": job_payload(), "queue": "default"})
    assert got == [("first", err, "default"), ("last", err, "default")]
    assert "error handler" in caplog.text and "raised" in caplog.text


def test_death_handlers_all_called_even_if_one_raises(caplog: pytest.LogCaptureFixture) -> None:
    hooks = Hooks()
    got: list[Any] = []

    def broken(p: Payload, exc: BaseException) -> None:
        raise RuntimeError("handler bug")

    hooks.death_handlers += [broken, lambda p, exc: got.append((p["class"], str(exc)))]
    hooks.report_death(job_payload(), ValueError("dead"))
    assert got == [("HardJob", "dead")]
    assert "death handler" in caplog.text


def test_no_handlers_is_fine() -> None:
    hooks = Hooks()
    hooks.report_error(ValueError("x"), {})
    hooks.report_death(job_payload(), ValueError("x"))


# --- lifecycle ---------------------------------------------------------------------------------


def test_lifecycle_events() -> None:
    assert set(LIFECYCLE_EVENTS) == {"startup", "quiet", "shutdown", "heartbeat"}


def test_on_registers_and_fire_calls_in_order() -> None:
    hooks = Hooks()
    calls: list[str] = []

    @hooks.on("startup")
    def one() -> None:
        calls.append("one")

    @hooks.on("startup")
    def two() -> None:
        calls.append("two")

    @hooks.on("shutdown")
    def bye() -> None:
        calls.append("bye")

    assert one() is None and callable(one)  # the decorator returns the function
    calls.clear()
    hooks.fire("startup")
    assert calls == ["one", "two"]
    hooks.fire("quiet")
    assert calls == ["one", "two"]


def test_on_rejects_unknown_events() -> None:
    hooks = Hooks()
    with pytest.raises(ValueError, match=r"unknown lifecycle event 'boot'; one of"):
        hooks.on("boot")


def test_fire_survives_a_raising_hook(caplog: pytest.LogCaptureFixture) -> None:
    hooks = Hooks()
    calls: list[str] = []

    @hooks.on("quiet")
    def broken() -> None:
        raise RuntimeError("hook bug")

    @hooks.on("quiet")
    def after() -> None:
        calls.append("after")

    hooks.fire("quiet")
    assert calls == ["after"]
    assert "lifecycle hook" in caplog.text
    assert "hook bug" in caplog.text


def test_hooks_instances_are_independent() -> None:
    a, b = Hooks(), Hooks()
    a.on("startup")(lambda: None)
    assert b.lifecycle["startup"] == []
    assert b.client_middleware == [] and b.server_middleware == []
