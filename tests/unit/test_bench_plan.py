"""bench.py's plan: which cases run with how many jobs (no process is started)."""

from __future__ import annotations

import sys
from types import ModuleType

import pytest
from support.scripts import load_script


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("benchmarks/bench.py", "bench_under_test")


def memory_jobs(bench: ModuleType, argv: list[str]) -> dict[str, int]:
    args = bench.parse_args(["--systems", "roadie,sidekiq,rq", "--workloads", "memory", *argv])
    systems = {name: bench.System(name, [], peer=name == "rq")
               for name in ("roadie", "sidekiq", "rq")}
    return {case.system: case.jobs for case in bench.plan(args, systems)}


def test_memory_runs_the_issues_500000_jobs_and_peers_at_most_n(bench: ModuleType) -> None:
    assert memory_jobs(bench, ["--jobs", "20000"]) == {
        "roadie": 500_000, "sidekiq": 500_000, "rq": 20_000}


def test_memory_jobs_can_be_set_and_quick_uses_n(bench: ModuleType) -> None:
    assert memory_jobs(bench, ["--jobs", "20000", "--memory-jobs", "30000"]) == {
        "roadie": 30_000, "sidekiq": 30_000, "rq": 20_000}
    assert memory_jobs(bench, ["--quick"]) == {"roadie": 5_000, "sidekiq": 5_000, "rq": 5_000}


def test_memory_jobs_must_be_positive(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--memory-jobs", "-1"])


def test_own_client_onecall_runs_beside_onecall_for_roadie_and_sidekiq_only(
        bench: ModuleType) -> None:
    args = bench.parse_args(["--quick", "--systems", "roadie,sidekiq,rq"])
    systems = {name: bench.System(name, [], peer=name == "rq")
               for name in ("roadie", "sidekiq", "rq")}
    own = {(c.system, c.concurrency, c.processes, c.jobs) for c in bench.plan(args, systems)
           if c.workload == "onecall-own"}
    # The peers' one-call jobs already use a client of their own: no second run for them.
    assert own == {("roadie", 10, 1, 5_000), ("roadie", 10, 2, 5_000),
                   ("sidekiq", 10, 1, 5_000), ("sidekiq", 10, 2, 5_000)}


def test_speedups_off_reaches_roadies_processes_and_nothing_else_does(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = sys.modules["core"]  # bench.py's own import of benchmarks/core.py
    # Recorded, so that what parse_args sets is undone after the test.
    monkeypatch.setenv(core.SPEEDUPS_OFF_VAR, "")
    monkeypatch.setenv("ROADIE_CONCURRENCY", "99")  # a stray setting of the shell
    assert "ROADIE_SPEEDUPS_OFF" not in core.child_env("redis://127.0.0.1:1/0")

    bench.parse_args(["--speedups-off", "steal,park"])

    env = core.child_env("redis://127.0.0.1:1/0")
    assert env["ROADIE_SPEEDUPS_OFF"] == "steal,park"
    assert "ROADIE_CONCURRENCY" not in env


def test_speedups_off_refuses_an_unknown_mechanism(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--speedups-off", "turbo"])
