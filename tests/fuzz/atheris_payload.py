"""Coverage-guided fuzzing (atheris) of what a roadie process does with a queue entry.

Not a pytest file: ``make fuzz`` runs it after the hypothesis properties when atheris
is installed (``pip install -e '.[fuzz]'``)::

    .venv/bin/python tests/fuzz/atheris_payload.py -max_total_time=120

Each input is one queue entry. ``decode`` must return a job payload or raise
``MalformedPayload``; a payload must encode again to bytes that decode to the same
thing; its times must read as finite seconds or None; and the retry decision on it
must not raise and must be writable. Any other exception is a crash that atheris
reports with the input that caused it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from roadie.config import Config
    from roadie.errors import MalformedPayload
    from roadie.payload import decode, display_class, encode, epoch_seconds
    from roadie.retry import decide

CONFIG = Config(max_retries=3)


class Failure(Exception):
    pass


def one_entry(data: bytes) -> None:
    try:
        payload = decode(data)
    except MalformedPayload as exc:
        if not str(exc):
            raise AssertionError("MalformedPayload without a message") from None
        return
    raw = encode(payload)
    if encode(decode(raw)) != raw:
        raise AssertionError(f"encode/decode is not stable for {data[:80]!r}")
    if not isinstance(display_class(payload), str):
        raise AssertionError("display_class is not a str")
    for field in ("created_at", "enqueued_at", "failed_at", "retried_at", "at"):
        t = epoch_seconds(payload.get(field))
        if t is not None and not math.isfinite(t):
            raise AssertionError(f"{field} read as {t}")
    outcome = decide(payload, Failure("fuzz"), "default", CONFIG)
    encode(outcome.payload)
    if outcome.action == "retry" and not math.isfinite(outcome.retry_at):
        raise AssertionError(f"retry_at {outcome.retry_at}")


def main() -> None:
    seeds = [
        b'{"class":"A","args":[1,"x",{"y":[2.5,null,true]}],"jid":"j","retry":true}',
        b'{"class":"A","args":[],"retry":5,"retry_count":3,"failed_at":1795869053250}',
        b'{"class":"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper","wrapped":"B",'
        b'"args":[{"arguments":[1]}],"retry_for":60}',
        b'{"class":"A","args":[123456789012345678901234567890]}',
    ]
    argv = sys.argv[:]
    if not any(not a.startswith("-") for a in argv[1:]):
        # No corpus folder given: start from real payloads in build/atheris-corpus.
        corpus = Path(__file__).resolve().parents[2] / "build" / "atheris-corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seeds):
            (corpus / f"seed{i}").write_bytes(seed)
        argv.append(str(corpus))
    atheris.Setup(argv, one_entry)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
