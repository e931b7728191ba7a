"""log.py: plain and JSON line formats, setup() touching only the "roadie" logger."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from roadie import log as roadie_log
from roadie.log import JSONFormatter, PlainFormatter, setup, tid

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture
def clean_loggers() -> Iterator[logging.Logger]:
    """Restore the "roadie" and root loggers after a test calls setup()."""
    logger = logging.getLogger("roadie")
    root = logging.getLogger()
    saved = (list(logger.handlers), logger.level, logger.propagate)
    root_saved = (list(root.handlers), root.level)
    try:
        yield logger
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
        root.handlers[:] = root_saved[0]
        root.setLevel(root_saved[1])


def record(msg: str = "start", ctx: dict[str, Any] | None = None, level: int = logging.INFO,
           created: float | None = None, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("kaboom")
        except ValueError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("roadie", level, __file__, 1, msg, None, exc_info)
    if ctx is not None:
        rec.roadie = ctx
    if created is not None:
        rec.created = created
    return rec


# --- tid ---------------------------------------------------------------------------------


def test_tid_is_base36_of_native_id_xor_pid() -> None:
    pid = os.getpid()
    assert tid(pid) == "0"
    assert tid(pid ^ 35) == "z"
    assert tid(pid ^ 36) == "10"
    assert int(tid(pid ^ 123456789), 36) == 123456789


def test_tid_differs_between_threads() -> None:
    ids: list[str] = []
    t = threading.Thread(target=lambda: ids.append(tid()))
    t.start()
    t.join()
    assert re.fullmatch(r"[0-9a-z]+", ids[0])
    assert ids[0] != tid()


# --- plain ------------------------------------------------------------------------------------


def test_plain_line_shape() -> None:
    line = PlainFormatter().format(record("start", {"class": "X", "jid": "Y"}))
    assert re.fullmatch(rf"{TS} pid={os.getpid()} tid=[0-9a-z]+ class=X jid=Y INFO: start", line)
    assert f"tid={tid()} " in line  # this thread's tid


def test_plain_timestamp_is_utc_with_milliseconds() -> None:
    line = PlainFormatter().format(record("x", created=1795869060.1468))
    assert line.startswith("2026-11-28T12:31:00.146Z pid=")


def test_plain_without_context_and_skipping_none() -> None:
    line = PlainFormatter().format(record("hello", {"class": "X", "bid": None, "elapsed": 0.012},
                                          level=logging.WARNING))
    assert re.fullmatch(rf"{TS} pid=\d+ tid=[0-9a-z]+ class=X elapsed=0.012 WARNING: hello", line)
    bare = PlainFormatter().format(record("bare"))
    assert re.fullmatch(rf"{TS} pid=\d+ tid=[0-9a-z]+ INFO: bare", bare)


def test_plain_with_exception_appends_the_traceback() -> None:
    text = PlainFormatter().format(record("fail", {"class": "X"}, exc=True))
    first, _, rest = text.partition("\n")
    assert first.endswith("INFO: fail")
    assert "Traceback" in rest and "ValueError: kaboom" in rest


def test_a_record_from_another_thread_keeps_its_thread() -> None:
    records: list[logging.LogRecord] = []
    t = threading.Thread(target=lambda: records.append(record("elsewhere")))
    t.start()
    t.join()
    line = PlainFormatter().format(records[0])
    assert f"tid={tid(records[0].thread)} " in line
    assert f"tid={tid()} " not in line


def test_plain_formats_message_arguments() -> None:
    rec = logging.LogRecord("roadie", logging.INFO, __file__, 1, "%s jobs", (3,), None)
    assert PlainFormatter().format(rec).endswith("INFO: 3 jobs")


# --- JSON ---------------------------------------------------------------------------------------


def test_json_is_one_object_with_the_fields() -> None:
    line = JSONFormatter().format(record("start", {"class": "X", "jid": "Y"}))
    assert "\n" not in line
    obj = json.loads(line)
    assert list(obj) == ["ts", "pid", "tid", "lvl", "msg", "ctx"]
    assert re.fullmatch(TS, obj["ts"])
    assert obj["pid"] == os.getpid()
    assert obj["tid"] == tid()
    assert obj["lvl"] == "INFO"
    assert obj["msg"] == "start"
    assert obj["ctx"] == {"class": "X", "jid": "Y"}


def test_json_without_context_and_with_odd_values() -> None:
    obj = json.loads(JSONFormatter().format(record("m")))
    assert "ctx" not in obj
    odd = json.loads(JSONFormatter().format(record("m", {"obj": object(), "n": 1.5})))
    assert odd["ctx"]["n"] == 1.5
    assert odd["ctx"]["obj"].startswith("<object object")


def test_json_with_exception() -> None:
    obj = json.loads(JSONFormatter().format(record("fail", {"jid": "Y"}, level=logging.ERROR,
                                                   exc=True)))
    assert obj["lvl"] == "ERROR"
    assert "ValueError: kaboom" in obj["exc"]


# --- setup ---------------------------------------------------------------------------


def test_setup_configures_only_the_roadie_logger(clean_loggers: logging.Logger) -> None:
    root = logging.getLogger()
    root_handlers = list(root.handlers)
    root_level = root.level
    stream = io.StringIO()
    setup("debug", "plain", stream)
    logger = clean_loggers
    assert logger is roadie_log.log
    assert len(logger.handlers) == 1
    assert isinstance(logger.handlers[0].formatter, PlainFormatter)
    assert logger.level == logging.DEBUG
    assert logger.propagate is False
    assert root.handlers == root_handlers
    assert root.level == root_level
    logging.getLogger("roadie.server").debug("child", extra={"roadie": {"jid": "Z"}})
    assert re.fullmatch(rf"{TS} pid=\d+ tid=[0-9a-z]+ jid=Z DEBUG: child\n", stream.getvalue())


def test_setup_twice_keeps_one_handler_and_json(clean_loggers: logging.Logger) -> None:
    first, second = io.StringIO(), io.StringIO()
    setup("INFO", "plain", first)
    setup("WARNING", "json", second)
    logger = clean_loggers
    assert len(logger.handlers) == 1
    assert isinstance(logger.handlers[0].formatter, JSONFormatter)
    logger.info("hidden")
    logger.warning("shown")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["msg"] == "shown"


def test_setup_does_not_capture_other_loggers(clean_loggers: logging.Logger) -> None:
    stream = io.StringIO()
    setup("DEBUG", "plain", stream)
    logging.getLogger("someapp").error("not ours")
    assert stream.getvalue() == ""
