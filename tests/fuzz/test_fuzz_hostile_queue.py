"""A real ``roadie run`` process fed a queue full of hostile payloads.

Bad entries of every kind a broken or hostile producer can write (invalid UTF-8,
truncated JSON, JSON that is not an object, no class, a class that is not a string,
args that are not a list, NaN and Infinity, 10,000 levels of nesting, 5 MB strings,
integers of 30 and 400 digits, unknown classes, ActiveJob wrappers with a bad inside,
retry fields of the wrong type) are pushed between good jobs. The process must never
crash; every good job runs exactly once; every bad entry ends in the dead set (byte
for byte when it cannot be decoded, else with Sidekiq's error fields added) or, where
Sidekiq's rules say so, in the retry set; and no queue or in-flight list keeps
anything. The process runs with ``max_retries = 0`` so that a failed job goes to the
dead set at once.

The entries come from a seeded generator (``ROADIE_FUZZ_SEED`` picks another seed;
``make fuzz`` pushes ten times as many).
"""

from __future__ import annotations

import os
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from fuzz_support import LONG
from support.procs import Harness
from support.redis import inflight_total, queue_total
from support.wait import poll

from roadie.payload import decode, encode
from roadie.retry import malformed_original

pytestmark = [pytest.mark.redis, pytest.mark.system]

JOBS = Path(__file__).resolve().parent / "fuzzjobs.py"
RUNS_KEY = "fuzz:runs"
QUEUE = "fuzz"
AJ = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
ERROR_FIELDS = ("error_message", "error_class", "failed_at", "retried_at", "retry_count",
                "error_backtrace")


@dataclass
class Bad:
    raw: bytes
    kind: str
    where: str  # "dead" or "retry"
    decodable: bool


def good(i: int, rng: random.Random) -> bytes:
    payload: dict[str, Any] = {"class": "fuzz.Good", "args": [i], "jid": f"good{i:020d}",
                               "queue": QUEUE, "retry": True}
    if i % 50 == 7:  # the same job through an ActiveJob wrapper
        payload = {"class": AJ, "wrapped": "fuzz.Good", "queue": QUEUE, "jid": f"aj{i:022d}",
                   "args": [{"job_class": "fuzz.Good", "arguments": [i]}]}
    if i == 3:
        payload["args"].append("p" * 5_000_000)  # a good job with a 5 MB argument
    if rng.random() < 0.2:
        payload["enqueued_at"] = rng.choice([1795869053.25, 1795869053250, "1795869053"])
    return encode(payload)


def bad_entries(rng: random.Random, rounds: int) -> list[Bad]:
    out: list[Bad] = []

    def malformed(kind: str, raw: bytes) -> None:
        out.append(Bad(raw, kind, "dead", False))

    def failing(kind: str, payload: dict[str, Any], where: str = "dead") -> None:
        payload.setdefault("queue", QUEUE)
        payload["fuzz_id"] = len(out)
        out.append(Bad(encode(payload), kind, where, True))

    for n in range(rounds):
        u = f"{n}-{rng.randrange(10**9)}".encode()  # makes each entry unique
        sample = encode({"class": "fuzz.Good", "args": [n], "jid": u.decode(), "queue": QUEUE})
        malformed("invalid UTF-8", b'{"class":"fuzz.Good","args":[1],"u":"' + u + b'\xff\xfe"}')
        malformed("invalid UTF-8 in class", b'{"class":"fuzz.\xc3\x28' + u + b'","args":[]}')
        malformed("truncated JSON", sample[: rng.randrange(1, len(sample) - 1)] + u[:0])
        malformed("bytes flipped", bytes(b ^ 0xFF if k == len(sample) // 2 else b
                                         for k, b in enumerate(sample)))
        malformed("JSON array", b"[" + u.replace(b"-", b",") + b"]")
        malformed("JSON string", b'"' + u + b'"')
        malformed("JSON number", u.split(b"-")[1])
        malformed("missing class", b'{"args":[1],"u":"' + u + b'"}')
        malformed("class not a string", b'{"class":' + u.split(b"-")[1] + b',"args":[]}')
        malformed("class a list", b'{"class":["fuzz.Good"],"args":[],"u":"' + u + b'"}')
        malformed("empty class", b'{"class":"","args":[],"u":"' + u + b'"}')
        malformed("args not a list", b'{"class":"fuzz.Good","args":{"i":1},"u":"' + u + b'"}')
        malformed("args a string", b'{"class":"fuzz.Good","args":"1","u":"' + u + b'"}')
        malformed("missing args", b'{"class":"fuzz.Good","u":"' + u + b'"}')
        for lit in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
            malformed(f"{lit.decode()} literal",
                      b'{"class":"fuzz.Good","args":[' + lit + b'],"u":"' + u + b'"}')
        malformed("lone surrogate", b'{"class":"fuzz.Good","args":["\\ud800' + u + b'"]}')
        malformed("10,000 levels", b'{"u":"' + u + b'","class":"fuzz.Good","args":'
                  + b"[" * 10_000 + b"]" * 10_000 + b"}")
        malformed("unclosed 10,000 levels", b'{"u":"' + u + b'","args":' + b"[" * 10_000)
        malformed("trailing garbage", sample + b"}" + u)
        if n == 0:
            malformed("empty entry", b"")
            malformed("JSON null", b"null")
            malformed("5 MB of garbage", b"{" + bytes(rng.randrange(256) for _ in range(4096))
                      * 1280)
        # Decodable, but the job cannot run: failed, and (max_retries = 0) dead.
        failing("unknown class", {"class": f"No::Such{n}", "args": [n]})
        failing("5 MB string", {"class": f"No::Such{n}", "args": ["x" * 5_000_000]}
                if n == 0 else {"class": "No::Such", "args": ["x" * 50_000]})
        failing("30-digit integer", {"class": "fuzz.Good", "args": [10**30 + n]})
        failing("400-digit integer", {"class": "No::Such", "args": [-(10**400) - n]})
        failing("1,000 levels", {"class": "No::Such", "args": [_nest([n], 1_000)]})
        failing("deep display_class", {"class": "No::Such", "args": [],
                                       "display_class": _nest("x", 900)})
        failing("deep jid", {"class": "fuzz.Good", "args": [-1 - n], "jid": _nest("j", 900)})
        failing("AJ wrapped unknown", {"class": AJ, "wrapped": "No::Such", "args": [{}]})
        failing("AJ wrapped not a str", {"class": AJ, "wrapped": [n], "args": [{}]})
        failing("AJ arguments not a list", {"class": AJ, "wrapped": "fuzz.Good",
                                            "args": [{"arguments": {"i": n}}]})
        failing("AJ no inner", {"class": AJ, "wrapped": "fuzz.Good", "args": []})
        failing("AJ inner a string", {"class": AJ, "wrapped": "fuzz.Good", "args": ["x"]})
        failing("wrong arity", {"class": "fuzz.Strict", "args": [n, n]})
        failing("good class, bad argument", {"class": "fuzz.Good", "args": [{"i": n}]})
        for value in ("yes", [], {}, 1.5, "0", -1):
            failing(f"retry {value!r}", {"class": "No::Such", "args": [], "retry": value})
        for value in ("x", [], 10**30, 1.5, None):
            failing(f"retry_count {value!r}", {"class": "No::Such", "args": [],
                                               "retry_count": value})
        failing("retry_for junk", {"class": "No::Such", "args": [], "retry_for": "abc",
                                   "failed_at": {"t": 1}})
        failing("retry_for -1e308", {"class": "No::Such", "args": [], "retry_for": -1e308})
        failing("backtrace huge", {"class": "No::Such", "args": [], "backtrace": 10**30})
        failing("retry_queue junk", {"class": "No::Such", "args": [], "retry_queue": [1]})
        failing("dead not a bool", {"class": "No::Such", "args": [], "dead": "no"})
        # A negative count buys no extra retries: clamped to 0, then one more failure
        # is past max_retries = 0.
        failing("retry_count -5", {"class": "No::Such", "args": [], "retry_count": -5})
        # These go to the retry set: a count below the limit (a clamped -5, then + 1 < 3),
        # or a retry_for not yet over (a first failure at an unreadable time counts
        # from now).
        failing("failed_at 400 digits", {"class": "No::Such", "args": [], "retry_for": 10,
                                         "failed_at": 10**400}, "retry")
        failing("retry 10**40, retry_count 10**30",
                {"class": "No::Such", "args": [], "retry": 10**40, "retry_count": 10**30},
                "retry")
        failing("retry_count -5, retry 3", {"class": "No::Such", "args": [], "retry": 3,
                                            "retry_count": -5}, "retry")
        failing("retry_for 400 digits", {"class": "No::Such", "args": [],
                                         "retry_for": 10**400}, "retry")
    return out


def _nest(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


def strip_errors(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in ERROR_FIELDS}


def test_hostile_queue_never_crashes_and_loses_nothing(
    redis_url: str, r: redis.Redis, tmp_path: Path
) -> None:
    seed = int(os.environ.get("ROADIE_FUZZ_SEED", "20261128"))
    rng = random.Random(seed)
    n_good = 2_000 if LONG else 200
    bads = bad_entries(rng, 10 if LONG else 1)
    raws = [b.raw for b in bads]
    assert len(set(raws)) == len(raws), "each bad entry is unique (the dead set is a set)"
    entries = [good(i, rng) for i in range(n_good)] + raws
    rng.shuffle(entries)
    for k in range(0, len(entries), 100):
        r.lpush(f"queue:{QUEUE}", *entries[k:k + 100])

    env = {"ROADIE_MAX_RETRIES": "0"}
    with Harness(redis_url, tmp_path / "procs", env, jobs=JOBS) as harness:
        proc = harness.spawn("-q", QUEUE, "-c", "5", r=r)
        expected_dead = sum(b.where == "dead" for b in bads)
        expected_retry = sum(b.where == "retry" for b in bads)

        def done() -> bool:
            assert proc.alive, f"roadie exited (seed {seed}):\n{proc.tail()}"
            return (queue_total(r) == 0 and inflight_total(r) == 0
                    and int(r.hlen(RUNS_KEY)) == n_good
                    and int(r.zcard("dead")) >= expected_dead)

        try:
            poll(done, 60 if LONG else 25, f"the hostile queue was not worked off (seed {seed})")
        except AssertionError as exc:
            state = {"queued": queue_total(r), "in flight": inflight_total(r),
                     "good runs": int(r.hlen(RUNS_KEY)), "dead": int(r.zcard("dead")),
                     "retry": int(r.zcard("retry"))}
            raise AssertionError(f"{exc}: {state}, expected {n_good} runs, "
                                 f"{expected_dead} dead, {expected_retry} retries;\n"
                                 f"{proc.tail(60)}") from None
        assert proc.alive
        proc.send(signal.SIGTERM)
        assert proc.wait_exit(20) == 0
        log = proc.output()

    # Every good job ran exactly once.
    runs = {int(k): int(v) for k, v in r.hgetall(RUNS_KEY).items()}
    assert runs == dict.fromkeys(range(n_good), 1), f"seed {seed}"
    # Nothing is left where work waits or runs.
    assert queue_total(r) == 0 and inflight_total(r) == 0 and r.zcard("schedule") == 0
    dead = [m for m in r.zrange("dead", 0, -1) if isinstance(m, bytes)]
    retry = [m for m in r.zrange("retry", 0, -1) if isinstance(m, bytes)]
    assert len(dead) == expected_dead, f"seed {seed}"
    assert len(retry) == expected_retry, f"seed {seed}"
    # Undecodable entries are in the dead set with the reason, kept byte for byte.
    kept: dict[bytes, dict[str, Any]] = {}
    for raw in dead:
        try:
            entry = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # a failed job with integers too wide for orjson: checked below
        original = malformed_original(entry)
        if original is not None:
            kept[original] = entry
    for b in bads:
        if not b.decodable:
            assert b.raw in kept, f"{b.kind} not in the dead set as it was (seed {seed})"
            entry = kept[b.raw]
            assert entry["error_class"] == "roadie.errors.MalformedPayload", b.kind
            assert entry["error_message"], b.kind
    # Decodable ones carry their original fields plus the error that killed them.
    found: dict[int, tuple[str, dict[str, Any]]] = {}
    for where, members in (("dead", dead), ("retry", retry)):
        for raw in members:
            try:
                payload = decode(raw)
            except Exception:
                continue
            if "fuzz_id" in payload:
                found[payload["fuzz_id"]] = (where, payload)
    for i, b in enumerate(bads):
        if not b.decodable:
            continue
        assert i in found, f"{b.kind} was lost (seed {seed})"
        where, payload = found[i]
        assert where == b.where, f"{b.kind}: in {where}, expected {b.where}"
        # Compared as JSON: == on 1,000 levels of lists would hit the recursion limit.
        assert encode(strip_errors(payload)) == encode(strip_errors(decode(b.raw))), b.kind
        assert payload["error_message"] and payload["error_class"], b.kind
        if payload["class"] == "No::Such" or str(payload["class"]).startswith("No::Such"):
            assert "unknown job class" in payload["error_message"]
    # The log says why each undecodable entry went to the dead set; nothing crashed.
    undecodable = sum(not b.decodable for b in bads)
    assert log.count("moved to the dead set with the reason") == undecodable
    assert "is not valid JSON" in log and "not an object" in log and "no 'class'" in log
    # (A failed job's traceback is logged as a warning; a processor thread that dies
    # logs "processor ... crashed", a log record that cannot be formatted "Logging error".)
    assert "crashed" not in log
    assert "--- Logging error ---" not in log
