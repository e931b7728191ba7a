"""``roadie run -P N``: a supervisor forking N worker processes (real processes, real Redis).

The supervisor is the ``Proc`` the harness started; its workers are found through the
``processes`` set (identities ``host:pid:hex``) and ``/proc/<pid>/status``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import orjson
import pytest
import redis
import swarmjobs
import sysjobs
from support.procs import Harness, Proc, base_env
from support.redis import left_anywhere
from support.wait import wait_until

import roadie

pytestmark = [pytest.mark.system, pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc (Linux)")]

HERE = Path(__file__).resolve().parent
SWARMJOBS = str(HERE / "swarmjobs.py")
EMPTY = {"queues": 0, "inflight": 0, "schedule": 0, "retry": 0, "dead": 0}


def ppid(pid: int) -> int | None:
    """Parent pid of ``pid``; None once it has exited (gone, or a zombie)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    if fields.get("State", "").startswith("Z"):
        return None
    return int(fields["PPid"])


#: Every worker pid a test saw, killed at teardown if still running.
SEEN: set[int] = set()


def workers(r: redis.Redis, supervisor: Proc) -> dict[int, str]:
    """pid -> identity of the registered processes whose parent is ``supervisor``."""
    out: dict[int, str] = {}
    for member in r.smembers("processes"):
        ident = member.decode()
        pid = int(ident.rsplit(":", 2)[1])
        if ppid(pid) == supervisor.pid:
            out[pid] = ident
    SEEN.update(out)
    return out


def wait_workers(r: redis.Redis, supervisor: Proc, n: int, timeout: float = 20.0,
                 exclude: set[int] | None = None) -> dict[int, str]:
    def check() -> dict[int, str] | None:
        if not supervisor.alive:
            raise AssertionError(f"{supervisor} exited:\n{supervisor.tail()}")
        found = {p: i for p, i in workers(r, supervisor).items() if p not in (exclude or ())}
        return found if len(found) == n else None

    return wait_until(check, timeout, 0.05, f"{n} workers of {supervisor} did not register")


@pytest.fixture
def swarm(procs: Harness) -> Iterator[Harness]:
    """The harness; on teardown also kills any worker left (the harness kills supervisors)."""
    SEEN.clear()
    try:
        yield procs
    finally:
        procs.close()
        # Workers stop by themselves when their supervisor dies; make sure of it.
        for pid in SEEN:
            with contextlib.suppress(OSError):
                if ppid(pid) is not None and b"roadie" in Path(
                        f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)


def started_by(r: redis.Redis) -> dict[str, int]:
    """jid -> pid that started it (the first start), from the Slow jobs' events."""
    out: dict[str, int] = {}
    for e in sysjobs.events(r, "start"):
        out.setdefault(e["jid"], e["pid"])
    return out


def test_two_workers_register_and_run_each_job_once(
    swarm: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    sup = swarm.spawn("-P", "2", "-c", "4")
    pids = wait_workers(r, sup, 2)
    assert sup.pid not in pids
    idents = list(pids.values())
    assert len(set(idents)) == 2
    labels = sorted(orjson_info(r, i)["labels"][-1] for i in idents)
    assert labels == ["worker-0", "worker-1"]

    jids = set(sysjobs.Stamp.perform_bulk([[f"n{i}"] for i in range(600)]))
    wait_until(lambda: len(sysjobs.runs(r)) == 600, 30, 0.05, "the 600 jobs did not all run")
    assert sysjobs.runs(r) == dict.fromkeys(jids, 1)
    ran_in = {e["pid"] for e in sysjobs.events(r, "stamp")}
    assert ran_in == set(pids), f"jobs ran in {ran_in}, workers are {set(pids)}"
    assert left_anywhere(r) == EMPTY

    sup.send(signal.SIGTERM)
    assert sup.wait_exit(30) == 0
    assert r.smembers("processes") == set()
    assert all(ppid(p) is None for p in pids)


def orjson_info(r: redis.Redis, identity: str) -> dict[str, object]:
    raw = r.hget(identity, "info")
    assert raw is not None
    info: dict[str, object] = orjson.loads(raw)
    return info


def test_a_killed_worker_is_replaced_and_its_jobs_recovered(
    swarm: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    sup = swarm.spawn("-P", "2", "-c", "2")
    pids = wait_workers(r, sup, 2)
    jids: list[str] = []
    # One at a time, each taken by an idle processor: each worker has jobs in flight.
    for n in range(1, 5):
        jids.append(sysjobs.Slow.perform_async(300))
        wait_until(lambda n=n: len(started_by(r)) == n, 20, 0.02, f"slow job {n} did not start")
    victim = next(iter(pids))
    held = {j for j, p in started_by(r).items() if p == victim}
    assert held, f"worker {victim} runs none of the jobs: {started_by(r)}"

    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: f"(pid {victim}) was killed by SIGKILL" in sup.output(), 10, 0.05,
               "the supervisor did not log the death")
    new = wait_workers(r, sup, 1, exclude=set(pids))
    [new_pid] = new
    assert f"started pid {new_pid} in place of pid {victim}" in sup.output()
    assert len(workers(r, sup)) == 2

    # The dead worker's jobs come back through a janitor (process_ttl 2 s here).
    wait_until(lambda: sum(sysjobs.runs(r).values()) == 4 + len(held), 30, 0.1,
               "the killed worker's jobs were not started again")
    r.set(sysjobs.RELEASE, 1)
    wait_until(lambda: len(sysjobs.events(r, "done")) == 4, 20, 0.05,
               "the slow jobs did not all finish")
    assert sysjobs.runs(r) == {j: (2 if j in held else 1) for j in jids}
    assert sorted(e["jid"] for e in sysjobs.events(r, "done")) == sorted(jids)
    victim_ident = pids[victim]
    assert f"of dead process {victim_ident}" in sup.output()
    assert left_anywhere(r) == EMPTY

    sup.send(signal.SIGTERM)
    assert sup.wait_exit(30) == 0


def test_term_stops_every_worker_exit_0_and_loses_nothing(
    swarm: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    sup = swarm.spawn("-P", "2", "-c", "3", "-t", "20")
    pids = wait_workers(r, sup, 2)
    slow = [sysjobs.Slow.perform_async(1.5) for _ in range(4)]
    quick = set(sysjobs.Record.perform_bulk([[20] for _ in range(1000)]))
    wait_until(lambda: len(started_by(r)) == 4, 20, 0.05, "the slow jobs did not start")

    sup.send(signal.SIGTERM)
    assert sup.wait_exit(40) == 0
    out = sup.output()
    for pid in pids:
        assert f"(pid {pid}) stopped" in out
        assert ppid(pid) is None
    assert "supervisor: all workers stopped; bye" in out
    assert r.smembers("processes") == set()
    # Running jobs finished within the timeout; the rest wait in the queue, none twice.
    assert sorted(e["jid"] for e in sysjobs.events(r, "done")) == sorted(slow)
    runs = sysjobs.runs(r)
    queued = {sysjobs_jid(raw) for raw in r.lrange("queue:default", 0, -1)}
    assert set(runs) | queued == quick | set(slow)
    assert not (set(runs) & queued)
    assert all(n == 1 for n in runs.values())
    assert {**left_anywhere(r), "queues": 0} == EMPTY


def sysjobs_jid(raw: bytes) -> str:
    jid: str = orjson.loads(raw)["jid"]
    return jid


def test_tstp_quiets_both_workers(
    swarm: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    sup = swarm.spawn("-P", "2", "-c", "2")
    pids = wait_workers(r, sup, 2)
    sup.send(signal.SIGTSTP)

    def quiet() -> bool:
        return all(r.hget(i, "quiet") == b"true" for i in pids.values())

    wait_until(quiet, 15, 0.05, "the workers' process hashes did not turn quiet")
    jid = sysjobs.Record.perform_async()
    # Two more beats of each (0.5 s apart): long enough for an unquiet worker to take it.
    for ident in pids.values():
        seen = [r.hget(ident, "beat")]
        wait_until(lambda i=ident, s=seen: _beats(r, i, s) >= 2, 10, 0.02, "no beats")
    assert r.llen("queue:default") == 1
    assert sysjobs.runs(r) == {}
    assert sup.alive and set(workers(r, sup)) == set(pids)
    # A quiet swarm replaces no worker: a new one would take jobs.
    victim = next(iter(pids))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: f"(pid {victim}) was killed by SIGKILL" in sup.output(), 10, 0.05,
               "the supervisor did not notice the death")
    assert "not replaced while quiet" in sup.output()
    assert f"in place of pid {victim}" not in sup.output()

    sup.send(signal.SIGTERM)
    assert sup.wait_exit(30) == 0
    assert "in place of" not in sup.output()
    assert [sysjobs_jid(raw) for raw in r.lrange("queue:default", 0, -1)] == [jid]


def _beats(r: redis.Redis, ident: str, seen: list[bytes | None]) -> int:
    now = r.hget(ident, "beat")
    if now != seen[-1]:
        seen.append(now)
    return len(seen) - 1


def test_a_worker_over_the_memory_limit_is_replaced_after_its_job(
    swarm: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    sup = swarm.spawn("-r", SWARMJOBS, "-P", "2", "-c", "2", "--max-memory", "120")
    pids = wait_workers(r, sup, 2)
    hog = swarmjobs.Hog.perform_async(200, 4.0)
    wait_until(lambda: sysjobs.events(r, "hog-start"), 20, 0.05, "the hog did not start")
    [start] = sysjobs.events(r, "hog-start")
    fat = start["pid"]
    assert fat in pids

    wait_until(lambda: f"(pid {fat}) uses " in sup.output(), 15, 0.1,
               "the supervisor did not notice the memory use")
    new = wait_workers(r, sup, 1, timeout=30, exclude=set(pids))
    [new_pid] = new
    out = sup.output()
    assert "over the limit of 120 MB" in out
    assert f"(pid {fat}) exited with code 0 (stopped for its memory use)" in out
    assert f"started pid {new_pid} in place of pid {fat}" in out
    # The job finished in the old worker (a normal stop), once, before it exited.
    [done] = sysjobs.events(r, "hog-done")
    assert done["pid"] == fat
    assert sysjobs.runs(r) == {hog: 1}
    assert "pushed back" not in out
    assert ppid(fat) is None
    assert set(workers(r, sup)) == (set(pids) - {fat}) | {new_pid}
    assert left_anywhere(r) == EMPTY

    sup.send(signal.SIGTERM)
    assert sup.wait_exit(30) == 0


def test_a_job_bigger_than_the_memory_limit_ends_in_the_dead_set(
    swarm: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    # The job holds 200 MB (limit 120) for longer than -t: each worker running it is
    # stopped for its memory, the job does not finish in time. Pushed back, it would
    # come straight back to the new worker, for ever; it counts a crash instead.
    sup = swarm.spawn("-r", SWARMJOBS, "-P", "1", "-c", "1", "-t", "1",
                      "--max-memory", "120")
    wait_workers(r, sup, 1)
    hog = swarmjobs.Hog.perform_async(200, 60.0)
    behind = set(sysjobs.Record.perform_bulk([[] for _ in range(5)]))

    wait_until(lambda: r.zcard("dead") == 1 and set(sysjobs.runs(r)) >= behind, 90, 0.1,
               "the job too big for the memory limit did not reach the dead set")
    starts = sysjobs.events(r, "hog-start")
    assert [e["crashes"] for e in starts] == [0, 1, 2]
    assert len({e["pid"] for e in starts}) == 3  # each in a new worker
    assert sysjobs.events(r, "hog-done") == []
    [raw] = r.zrange("dead", 0, -1)
    dead = orjson.loads(raw)
    assert dead["jid"] == hog
    assert dead["error_class"] == "roadie.errors.JobCrashedProcess"
    assert "max_memory_mb (--max-memory) 120 MB" in dead["error_message"]
    # The jobs behind it ran, once each.
    assert {j: n for j, n in sysjobs.runs(r).items() if j in behind} == dict.fromkeys(behind, 1)
    wait_until(lambda: left_anywhere(r) == {**EMPTY, "dead": 1}, 20, 0.1,
               "jobs were left behind")
    sup.send(signal.SIGTERM)
    assert sup.wait_exit(30) == 0


def test_term_to_the_whole_group_is_one_stop_not_two(
    swarm: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    # A terminal's Ctrl-C or systemd signal every process: the worker gets TERM itself
    # and again from its supervisor, at once. That is not a second TERM (stop now):
    # the running job still gets its -t to finish.
    sup = swarm.spawn("-P", "2", "-c", "1", "-t", "20")
    wait_workers(r, sup, 2)
    slow = sysjobs.Slow.perform_async(2.0)
    wait_until(lambda: started_by(r), 10, 0.05, "the slow job did not start")

    os.killpg(sup.pid, signal.SIGTERM)
    assert sup.wait_exit(30) == 0
    assert [e["jid"] for e in sysjobs.events(r, "done")] == [slow]
    assert "pushed back" not in sup.output()
    assert left_anywhere(r) == EMPTY


def test_workers_stop_when_the_supervisor_is_killed(
    swarm: Harness, r: redis.Redis, client: roadie.Client
) -> None:
    sup = swarm.spawn("-P", "2", "-c", "2")
    pids = wait_workers(r, sup, 2)
    sup.kill()

    def gone() -> bool:
        return all(ppid(p) is None for p in pids)

    wait_until(gone, 20, 0.05, f"workers {list(pids)} outlived their supervisor")
    out = sup.output()
    for pid in pids:
        # A normal stop (TERM), not a crash: each left the processes set itself.
        assert f"pid={pid} tid=0 INFO: bye" in out
    assert r.smembers("processes") == set()


@pytest.mark.parametrize(("args", "message"), [
    (["-P", "0"], "processes must be at least 1, got 0"),
    (["-P", "2", "--max-memory", "1"], "set a higher limit"),
])
def test_bad_settings_fail_at_once(
    redis_url: str, r: redis.Redis, tmp_path: Path, args: list[str], message: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "roadie", "run", "-r", str(HERE / "sysjobs.py"), *args],
        env=base_env(redis_url), cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert message in proc.stderr
    assert r.smembers("processes") == set()


def test_a_worker_dying_at_start_is_restarted_with_a_backoff(
    swarm: Harness, r: redis.Redis
) -> None:
    sup = swarm.spawn("-r", SWARMJOBS, "-P", "2", env={"SWARM_EXIT_AT_START": "3"})

    def starts() -> list[float]:
        return [_timestamp(line) for line in sup.output().splitlines()
                if "supervisor: worker 0: started pid" in line]

    wait_until(lambda: len(starts()) >= 4, 20, 0.05, "worker 0 was not restarted 3 times")
    at = starts()
    gaps = [b - a for a, b in pairwise(at)]
    # At once after the first death, then 1 s, then 2 s: no spinning.
    assert gaps[0] < min(gaps[1] - 0.5, 3.0)
    assert 0.9 <= gaps[1] < 5.0
    assert 1.9 <= gaps[2] < 8.0
    out = sup.output()
    assert "exited with code 3 after" in out
    assert "the 3rd time in a row within 10 s of its start; restarting it in 2 s" in out
    sup.send(signal.SIGTERM)
    sup.wait_exit(15)
    assert "supervisor: TERM received" in sup.output()


def _timestamp(line: str) -> float:
    return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).timestamp()


def test_the_settings_come_from_env_and_file(tmp_path: Path) -> None:
    from roadie import config as config_mod

    cfg = config_mod.load(env={"ROADIE_PROCESSES": "3", "ROADIE_MAX_MEMORY_MB": "512"})
    assert (cfg.processes, cfg.max_memory_mb) == (3, 512)
    toml = tmp_path / "roadie.toml"
    toml.write_text("[roadie]\nprocesses = 4\nmax_memory_mb = 300\n")
    cfg = config_mod.load(env={}, config_file=toml)
    assert (cfg.processes, cfg.max_memory_mb) == (4, 300)
    assert config_mod.load(env={}).processes == 1  # the default: no supervisor
    with pytest.raises(roadie.errors.ConfigError, match="must be a number"):
        config_mod.load(env={"ROADIE_PROCESSES": "two"})
    with pytest.raises(roadie.errors.ConfigError, match="0 for no limit"):
        config_mod.load(env={"ROADIE_MAX_MEMORY_MB": "-1"})
