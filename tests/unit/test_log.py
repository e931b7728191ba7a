"""log.py: plain and JSON line formats, setup() touching only the "roadie" logger."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from roadie import log as roadie_log
from roadie.log import JSONFormatter, LineWriter, PlainFormatter, setup, tid

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


def test_a_record_without_a_thread_gets_the_formatting_threads_tid() -> None:
    # logging.logThreads = False leaves record.thread None; no tid is cached for it.
    rec = record("no thread")
    rec.thread = None
    tids: list[str] = []
    t = threading.Thread(target=lambda: tids.append(PlainFormatter().format(rec)))
    t.start()
    t.join()
    here = PlainFormatter().format(rec)
    assert f"tid={tid()} " in here
    assert f"tid={tid()} " not in tids[0]


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


# --- LineWriter: many threads, one stream --------------------------------------------------


class SlowStream(io.StringIO):
    """A stream whose writes let go of the GIL, as a real one's do, and can be held."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def write(self, s: str) -> int:
        self.entered.set()
        self.writes += 1
        assert self.gate.wait(10), "the test never let the write go on"
        time.sleep(0)  # lets go of the GIL
        return super().write(s)


def writer_logger(stream: io.StringIO, name: str = "roadie.test.linewriter") -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [LineWriter(stream)]
    logger.handlers[0].setFormatter(logging.Formatter("%(threadName)s %(message)s"))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def test_lines_of_many_threads_arrive_whole_and_in_order() -> None:
    stream = SlowStream()
    logger = writer_logger(stream)
    per, threads = 300, 12

    def chatter() -> None:
        for i in range(per):
            logger.info("line %d", i)

    workers = [threading.Thread(target=chatter, name=f"w{n}") for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    logger.handlers[0].flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == per * threads
    for n in range(threads):
        mine = [int(line.split()[-1]) for line in lines if line.startswith(f"w{n} line ")]
        assert mine == list(range(per)), f"thread w{n}'s lines are missing or out of order"
    # Lines that arrived during a write went out together with the next one.
    assert stream.writes < per * threads


def test_a_thread_does_not_wait_for_another_ones_write() -> None:
    stream = SlowStream()
    logger = writer_logger(stream)
    stream.gate.clear()  # the first write hangs until the test lets it go
    first = threading.Thread(target=logger.info, args=("first",), name="slow")
    first.start()
    assert stream.entered.wait(5)
    done = threading.Event()
    other = threading.Thread(target=lambda: (logger.info("second"), done.set()), name="fast")
    other.start()
    assert done.wait(5), "a log call waited for another thread's write"
    assert "second" not in stream.getvalue()  # it waits in the writer, not in the caller
    stream.gate.set()
    first.join(5)
    other.join(5)
    assert stream.getvalue().splitlines() == ["slow first", "fast second"]


def test_flush_waits_for_the_write_under_way() -> None:
    stream = SlowStream()
    logger = writer_logger(stream)
    stream.gate.clear()
    t = threading.Thread(target=logger.info, args=("pending",))
    t.start()
    assert stream.entered.wait(5)
    flushed = threading.Event()
    f = threading.Thread(target=lambda: (logger.handlers[0].flush(), flushed.set()))
    f.start()
    assert not flushed.wait(0.05)  # the write under way still hangs
    stream.gate.set()
    assert flushed.wait(5)
    assert "pending" in stream.getvalue()
    t.join(5)
    f.join(5)


def test_a_failing_write_is_reported_and_logging_goes_on(
        capsys: pytest.CaptureFixture[str]) -> None:
    class Flaky(io.StringIO):
        fail = True

        def write(self, s: str) -> int:
            if self.fail:
                self.fail = False
                raise OSError("disk full")
            return super().write(s)

    stream = Flaky()
    logger = writer_logger(stream)
    logger.info("lost")  # does not raise in the caller
    assert "OSError: disk full" in capsys.readouterr().err
    logger.info("kept")
    assert stream.getvalue() == "MainThread kept\n"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_writes_though_the_parent_was_writing() -> None:
    read_end, write_end = os.pipe()
    stream = SlowStream()
    logger = writer_logger(stream)
    handler = logger.handlers[0]
    assert isinstance(handler, LineWriter)
    assert handler._writing.acquire(timeout=5)  # as if a parent thread were mid-write
    handler._pending.append("parent's line, not the child's")
    try:
        pid = os.fork()
        if pid == 0:  # the child: its handler must be free and empty
            code = 1
            try:
                with os.fdopen(write_end, "w") as out:
                    handler.stream = out
                    logger.info("from the child")
                    code = 0
            finally:
                os._exit(code)
    finally:
        handler._writing.release()
        handler._pending.clear()
    os.close(write_end)
    with os.fdopen(read_end) as got:
        text = got.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert text == "MainThread from the child\n"


def test_setup_uses_the_line_writer_and_flush_writes(clean_loggers: logging.Logger) -> None:
    stream = io.StringIO()
    setup("INFO", "plain", stream)
    assert isinstance(clean_loggers.handlers[0], LineWriter)
    clean_loggers.info("hello")
    roadie_log.flush()
    assert stream.getvalue().endswith("INFO: hello\n")
