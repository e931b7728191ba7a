"""A roadie process as Sidekiq's API and Web UI see it, and obeying Sidekiq's API.

``Sidekiq::ProcessSet`` must show a roadie process's host, pid, concurrency, busy
count, queues and quiet state; ``Sidekiq::Workers`` its running job;
``Sidekiq::Stats`` its counters; Sidekiq's Web UI pages render all of it.
``process.quiet!`` and ``process.stop!`` from Ruby reach it through Redis, and it
obeys.
"""

from __future__ import annotations

import socket
import time

import redis
from interop_harness import (
    PY_QUEUE,
    Fleet,
    require_sidekiq,
    sidekiq_api,
    sidekiq_web,
    wait_counts,
)
from support.wait import poll

import roadie

require_sidekiq()

LOW_QUEUE = "interop_py_low"


def test_sidekiq_api_reads_and_steers_a_roadie_process(
    fleet: Fleet, r: redis.Redis, redis_url: str, pyclient: roadie.Client
) -> None:
    proc = fleet.roadie(PY_QUEUE, LOW_QUEUE, concurrency=3, r=r, args=("-g", "pytag"))
    ident = proc.identity
    assert ident is not None
    jid = roadie.push("BlockPy", ["hold"], queue=PY_QUEUE)
    poll(lambda: r.hget("interop:py:started", "hold"), 15, "BlockPy did not start")
    failing = [roadie.push("AlwaysFails", ["w1"], queue=PY_QUEUE, backtrace=True),
               roadie.push("AlwaysFails", ["w2"], queue=PY_QUEUE, retry=0)]
    poll(lambda: r.zcard("retry") == 1 and r.zcard("dead") == 1, 15, "failures not recorded")
    poll(lambda: r.hget(ident, "busy") == b"1", 10, "busy not written")

    [processes, workers, stats, size] = sidekiq_api(
        redis_url, {"op": "processes"}, {"op": "workers"}, {"op": "stats"},
        {"op": "workers_size"})
    [seen] = processes
    assert seen["identity"] == ident
    assert seen["hostname"] == socket.gethostname() and seen["pid"] == proc.pid
    assert seen["concurrency"] == 3 and seen["busy"] == 1
    assert seen["queues"] == [PY_QUEUE, LOW_QUEUE]
    assert seen["tag"] == "pytag" and seen["labels"] == []
    assert seen["quiet"] == "false" and seen["stopping"] is False
    assert seen["version"].startswith("roadie")
    assert abs(seen["started_at"] - time.time()) < 120
    assert abs(seen["beat"] - time.time()) < 30 and seen["rss"] > 0
    [work] = workers
    assert work["process"] == ident and work["queue"] == PY_QUEUE
    assert work["jid"] == jid and work["class"] == "BlockPy" and work["args"] == ["hold"]
    assert isinstance(work["run_at"], int) and abs(work["run_at"] - time.time()) < 60
    assert size == 1
    assert stats["processes_size"] == 1 and stats["workers_size"] == 1

    # Sidekiq's own Web UI renders roadie's process, running job, retry and dead job.
    [(_, score)] = r.zrange("retry", 0, -1, withscores=True)
    busy, retries, retry_page, morgue = sidekiq_web(
        redis_url, "/busy", "/retries", f"/retries/{score!r}-{failing[0]}", "/morgue")
    assert [p["status"] for p in (busy, retries, retry_page, morgue)] == [200] * 4
    host_pid = f"{socket.gethostname()}:{proc.pid}"
    for text in (host_pid, "pytag", PY_QUEUE, "BlockPy", jid, ident):
        assert text in busy["text"], text
    assert "AlwaysFails" in retries["text"] and "always fails w1" in retries["text"]
    assert failing[0] in retry_page["text"] and "RuntimeError" in retry_page["text"]
    assert "interop_pyjobs.py" in retry_page["text"]  # roadie's backtrace, decoded by Ruby
    assert "RuntimeError: always fails w2" in morgue["text"]

    # Quiet from Ruby: the process stops fetching, its running job goes on.
    assert sidekiq_api(redis_url, {"op": "quiet", "identity": ident}) == [True]
    poll(lambda: r.hget(ident, "quiet") == b"true", 10, "roadie did not turn quiet")
    [[seen]] = sidekiq_api(redis_url, {"op": "processes"})
    assert seen["stopping"] is True
    later = roadie.push("ResizeImage", ["after-quiet"], queue=PY_QUEUE)
    beats = [r.hget(ident, "beat")]

    def three_more_beats() -> bool:
        beat = r.hget(ident, "beat")
        if beat != beats[-1]:
            beats.append(beat)
        return len(beats) > 3

    poll(three_more_beats, 10, "no heartbeats while quiet")
    assert r.llen(f"queue:{PY_QUEUE}") == 1, "a quiet process fetched a job"
    r.set("interop:release:hold", 1)
    wait_counts(r, "interop:py:ran", 1, timeout=15, what="the running job after quiet")

    # Stop from Ruby: the process exits cleanly and leaves the process set.
    poll(lambda: r.get("stat:processed") == b"3", 10, "processed count not flushed")
    assert sidekiq_api(redis_url, {"op": "stop", "identity": ident}) == [True]
    assert proc.wait_exit(20) == 0
    [processes, stats, queue] = sidekiq_api(
        redis_url, {"op": "processes"}, {"op": "stats"}, {"op": "queue", "name": PY_QUEUE})
    assert processes == []
    assert (stats["processed"], stats["failed"], stats["processes_size"]) == (3, 2, 0)
    # The job pushed after quiet is still waiting, untouched, for the next process.
    assert [j["jid"] for j in queue["jobs"]] == [later]
    # Sidekiq 6.4 reads roadie's float-second enqueued_at: a small, positive latency.
    assert queue["jobs"][0]["class"] == "ResizeImage" and 0 <= queue["latency"] < 60
