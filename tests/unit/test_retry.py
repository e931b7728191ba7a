"""retry.py: backoff, the decision after a failure, error fields, backtraces (no Redis)."""

from __future__ import annotations

import base64
import time
import zlib
from typing import Any

import orjson
import pytest

from roadie.config import Config
from roadie.job import Job
from roadie.keys import Keys
from roadie.registry import Registry
from roadie.retry import (
    MAX_ERROR_MESSAGE,
    add_dead,
    backoff_s,
    backtrace_lines,
    compress_backtrace,
    decide,
    decompress_backtrace,
    error_class_name,
    record_error,
    safe_message,
)

CONFIG = Config()
REG = Registry()


def payload(**fields: Any) -> dict[str, Any]:
    return {"retry": True, "queue": "default", "args": [1], "class": "HardJob",
            "jid": "b4a577edbccf1d805744efa9", "created_at": 1795869053.4, **fields}


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a real traceback (two frames deep)."""

    def inner() -> None:
        raise exc

    try:
        inner()
    except BaseException as caught:
        return caught
    raise AssertionError("unreachable")


class CustomError(Exception):
    pass


# --- backoff ---------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 5, 10, 24])
def test_backoff_range(count: int) -> None:
    low, high = count**4 + 15, count**4 + 15 + 10 * (count + 1)
    values = {backoff_s(count) for _ in range(400)}
    assert all(low <= v < high for v in values)
    assert min(values) < low + 10 * (count + 1) / 2 < max(values)  # jitter is used


# --- decide: retry option -----------------------------------------------------------


def test_first_failure_then_second() -> None:
    p = payload()
    before = time.time()
    first = decide(p, raised(ValueError("boom")), "default", CONFIG)
    assert first.action == "retry" and first.died is False
    assert p["retry_count"] == 0
    assert before <= p["failed_at"] <= time.time()
    assert "retried_at" not in p
    assert p["error_message"] == "boom"
    assert p["error_class"] == "ValueError"
    assert 15 <= first.retry_at - p["failed_at"] < 25

    second = decide(p, raised(CustomError("again")), "default", CONFIG)
    assert second.action == "retry"
    assert p["retry_count"] == 1
    assert p["retried_at"] >= p["failed_at"]
    assert p["error_message"] == "again"
    assert p["error_class"] == f"{__name__}.CustomError"
    assert 16 <= second.retry_at - p["retried_at"] < 36


def test_max_retries_is_honoured() -> None:
    cfg = Config(max_retries=2)
    p = payload()
    actions = [decide(p, ValueError("x"), "default", cfg).action for _ in range(3)]
    assert actions == ["retry", "retry", "dead"]
    assert p["retry_count"] == 2


@pytest.mark.parametrize(("stored", "then"), [(-1000, 1), (-1, 1), (10**30, 10_001)])
def test_a_negative_or_absurd_retry_count_is_clamped(stored: int, then: int) -> None:
    # -1000 would have bought a thousand extra retries; 10**30 is past every limit.
    p = payload(retry=3, retry_count=stored)
    out = decide(p, ValueError("x"), "default", CONFIG)
    assert p["retry_count"] == then
    assert out.action == ("retry" if then < 3 else "dead")


def test_retry_n_gives_n_retries() -> None:
    p = payload(retry=3)
    actions = [decide(p, ValueError("x"), "default", CONFIG).action for _ in range(4)]
    assert actions == ["retry", "retry", "retry", "dead"]


def test_retry_zero_goes_to_dead_at_once() -> None:
    p = payload(retry=0)
    out = decide(p, ValueError("x"), "default", CONFIG)
    assert out.action == "dead" and out.died is True
    assert p["retry_count"] == 0
    assert "failed_at" in p


@pytest.mark.parametrize("value", [False, None])
def test_retry_false_discards_and_reports_death(value: Any) -> None:
    p = payload(retry=value)
    out = decide(p, ValueError("x"), "default", CONFIG)
    assert out.action == "discard" and out.died is True
    assert "error_message" not in p


def test_missing_retry_means_true() -> None:
    p = payload()
    del p["retry"]
    assert decide(p, ValueError("x"), "default", CONFIG).action == "retry"


def test_dead_false_skips_the_dead_set() -> None:
    out = decide(payload(retry=0, dead=False), ValueError("x"), "default", CONFIG)
    assert out.action == "discard" and out.died is True


def test_retry_queue_changes_the_queue() -> None:
    p = payload(retry_queue="slow")
    decide(p, ValueError("x"), "default", CONFIG)
    assert p["queue"] == "slow"
    q = payload(queue="elsewhere")
    decide(q, ValueError("x"), "mail", CONFIG)
    assert q["queue"] == "mail"  # the queue it ran on


# --- decide: the job's hooks ---------------------------------------------------------


def make_job(retry_in: Any = None, exhausted: Any = None) -> type[Job]:
    class Hooked(Job, registry=REG):
        def perform(self) -> None: ...

        @classmethod
        def retry_in(cls, count: int, exc: BaseException, p: dict[str, Any]) -> Any:
            return retry_in(count, exc, p) if callable(retry_in) else retry_in

        @classmethod
        def retries_exhausted(cls, p: dict[str, Any], exc: BaseException) -> Any:
            return exhausted(p, exc) if callable(exhausted) else exhausted

    return Hooked


def test_retry_in_seconds_replaces_the_base_delay() -> None:
    seen: list[Any] = []

    def hook(count: int, exc: BaseException, p: dict[str, Any]) -> int:
        seen.append((count, str(exc), p["jid"]))
        return 1000

    p = payload()
    out = decide(p, ValueError("x"), "default", CONFIG, make_job(hook))
    assert out.action == "retry"
    assert 1000 <= out.retry_at - p["failed_at"] < 1010
    assert seen == [(0, "x", p["jid"])]


@pytest.mark.parametrize("value", [None, 0, -5, "later", True])
def test_retry_in_other_values_mean_the_default(value: Any) -> None:
    p = payload()
    out = decide(p, ValueError("x"), "default", CONFIG, make_job(value))
    assert out.action == "retry"
    assert 15 <= out.retry_at - p["failed_at"] < 25


def test_retry_in_kill_sends_to_dead_and_calls_exhausted() -> None:
    calls: list[Any] = []
    job_cls = make_job("kill", lambda p, exc: calls.append(exc))
    out = decide(payload(), ValueError("x"), "default", CONFIG, job_cls)
    assert out.action == "dead" and out.died is True
    assert len(calls) == 1


def test_retry_in_discard() -> None:
    out = decide(payload(), ValueError("x"), "default", CONFIG, make_job("discard"))
    assert out.action == "discard" and out.died is False


def test_retry_in_raising_falls_back_to_the_default(caplog: pytest.LogCaptureFixture) -> None:
    def hook(count: int, exc: BaseException, p: dict[str, Any]) -> int:
        raise RuntimeError("bad hook")

    p = payload()
    out = decide(p, ValueError("x"), "default", CONFIG, make_job(hook))
    assert out.action == "retry"
    assert 15 <= out.retry_at - p["failed_at"] < 25
    assert "retry_in raised" in caplog.text


def test_retries_exhausted_returning_discard() -> None:
    out = decide(payload(retry=0), ValueError("x"), "default", CONFIG, make_job(None, "discard"))
    assert out.action == "discard" and out.died is True


def test_retries_exhausted_raising_still_goes_to_dead(caplog: pytest.LogCaptureFixture) -> None:
    def boom(p: dict[str, Any], exc: BaseException) -> None:
        raise RuntimeError("oops")

    out = decide(payload(retry=0), ValueError("x"), "default", CONFIG, make_job(None, boom))
    assert out.action == "dead"
    assert "retries_exhausted raised" in caplog.text


def test_retries_exhausted_not_called_while_retrying() -> None:
    calls: list[Any] = []
    job_cls = make_job(None, lambda *a: calls.append(a))
    decide(payload(), ValueError("x"), "default", CONFIG, job_cls)
    assert calls == []


# --- retry_for ------------------------------------------------------------------------


def test_retry_for_within_the_window_retries_whatever_the_count() -> None:
    p = payload(retry=1, retry_for=3600, retry_count=7, failed_at=time.time() - 60)
    assert decide(p, ValueError("x"), "default", CONFIG).action == "retry"
    assert p["retry_count"] == 8


def test_retry_for_first_failure_retries() -> None:
    assert decide(payload(retry_for=10), ValueError("x"), "default", CONFIG).action == "retry"


def test_retry_for_past_the_window_is_dead() -> None:
    p = payload(retry_for=3600, retry_count=1, failed_at=time.time() - 7200)
    assert decide(p, ValueError("x"), "default", CONFIG).action == "dead"


def test_retry_for_reads_sidekiq8_millisecond_failed_at() -> None:
    old_ms = int((time.time() - 7200) * 1000)
    p = payload(retry_for=3600, retry_count=1, failed_at=old_ms)
    assert decide(p, ValueError("x"), "default", CONFIG).action == "dead"
    recent_ms = int((time.time() - 60) * 1000)
    q = payload(retry_for=3600, retry_count=1, failed_at=recent_ms)
    assert decide(q, ValueError("x"), "default", CONFIG).action == "retry"


# --- error fields ---------------------------------------------------------------------


def test_error_message_is_truncated() -> None:
    p = payload()
    decide(p, ValueError("x" * 50_000), "default", CONFIG)
    assert p["error_message"] == "x" * MAX_ERROR_MESSAGE
    assert MAX_ERROR_MESSAGE == 10_000


def test_exception_whose_str_raises() -> None:
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    p = payload()
    decide(p, Weird(), "default", CONFIG)
    where = f"{__name__}.test_exception_whose_str_raises.<locals>"
    assert p["error_message"] == f"<{where}.Weird whose str() raised>"
    assert p["error_class"].endswith("Weird")


def test_safe_message_handles_surrogates() -> None:
    assert safe_message(ValueError("a\ud800b")) == "a?b"


def test_error_class_name() -> None:
    assert error_class_name(KeyError("k")) == "KeyError"
    assert error_class_name(CustomError()) == f"{__name__}.CustomError"


# --- backtraces -----------------------------------------------------------------------


def test_no_backtrace_by_default() -> None:
    p = payload()
    decide(p, raised(ValueError("x")), "default", CONFIG)
    assert "error_backtrace" not in p


def test_backtrace_true_compresses_all_lines() -> None:
    p = payload(backtrace=True)
    exc = raised(ValueError("x"))
    decide(p, exc, "default", CONFIG)
    raw = base64.b64decode(p["error_backtrace"], validate=True)
    lines = orjson.loads(zlib.decompress(raw))
    assert lines == decompress_backtrace(p["error_backtrace"])
    assert len(lines) == 2
    assert lines[0].endswith(":in `inner'")  # innermost first, Ruby style
    assert lines[1].endswith(":in `raised'")
    assert __file__ in lines[0]


def test_backtrace_n_keeps_n_lines() -> None:
    p = payload(backtrace=1)
    decide(p, raised(ValueError("x")), "default", CONFIG)
    assert len(decompress_backtrace(p["error_backtrace"])) == 1


@pytest.mark.parametrize("value", [False, 0, -1])
def test_backtrace_off_values(value: Any) -> None:
    p = payload(backtrace=value)
    decide(p, raised(ValueError("x")), "default", CONFIG)
    assert "error_backtrace" not in p


def test_compress_round_trip() -> None:
    lines = [f"app/jobs/{i}.py:{i}:in `perform'" for i in range(100)] + ["ünïcode:1:in `x'"]
    packed = compress_backtrace(lines)
    assert "\n" not in packed  # strict base64, as Sidekiq 7+
    assert decompress_backtrace(packed) == lines


def test_decompress_sidekiq_64_mime_base64() -> None:
    # Sidekiq 6.4 used Base64.encode64: a newline after every 60 characters.
    lines = [f"/app/jobs/hard_job.rb:{i}:in `perform'" for i in range(60)]
    strict = base64.b64encode(zlib.compress(orjson.dumps(lines))).decode()
    mime = "".join(strict[i:i + 60] + "\n" for i in range(0, len(strict), 60))
    assert mime.count("\n") > 2
    assert decompress_backtrace(mime) == lines


def test_decompress_non_list_gives_empty() -> None:
    assert decompress_backtrace(base64.b64encode(zlib.compress(b'{"a":1}')).decode()) == []


def test_backtrace_lines_without_traceback() -> None:
    assert backtrace_lines(ValueError("never raised"), None) == []


def test_record_error_clears_the_crash_counter() -> None:
    p = payload(roadie_crashes=2)
    record_error(p, ValueError("x"), "default", 1795869053.5)
    assert "roadie_crashes" not in p
    assert p["failed_at"] == 1795869053.5


def test_add_dead_queues_add_then_trims() -> None:
    class Pipe:
        def __init__(self) -> None:
            self.calls: list[tuple[Any, ...]] = []

        def __getattr__(self, name: str) -> Any:
            return lambda *args: self.calls.append((name, *args))

    pipe = Pipe()
    cfg = Config(dead_max_jobs=100, dead_timeout_s=1000.0)
    add_dead(pipe, Keys("ns"), cfg, b'{"class":"J","args":[]}', at=5000.5)
    assert pipe.calls == [
        ("zadd", "ns:dead", {b'{"class":"J","args":[]}': 5000.5}),
        ("zremrangebyscore", "ns:dead", "-inf", "(4000.5"),
        ("zremrangebyrank", "ns:dead", 0, -101),
    ]
