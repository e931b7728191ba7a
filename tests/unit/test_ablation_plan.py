"""ablation.py's plan: which workloads each speed mechanism is measured on (no process
is started)."""

from __future__ import annotations

from types import ModuleType

import pytest
from support.scripts import load_script

from roadie.speedups import SPEEDUPS


@pytest.fixture(scope="module")
def ablation() -> ModuleType:
    return load_script("benchmarks/ablation.py", "ablation_under_test")


def test_every_mechanism_is_measured_on_workloads_bench_runs(ablation: ModuleType) -> None:
    assert set(ablation.TARGETS) == {s.name for s in SPEEDUPS}
    for workloads in ablation.TARGETS.values():
        assert workloads and set(workloads) <= set(ablation.bench.WORKLOADS)


def test_all_on_runs_every_case_the_mechanisms_are_compared_on(ablation: ModuleType) -> None:
    system = ablation.bench.System("roadie", [])
    every = set(ablation.cases_for(
        sorted({w for ws in ablation.TARGETS.values() for w in ws}), 100, system))
    for workloads in ablation.TARGETS.values():
        assert set(ablation.cases_for(workloads, 100, system)) <= every


def test_an_unknown_mechanism_is_refused(ablation: ModuleType) -> None:
    with pytest.raises(SystemExit):
        ablation.parse_args(["--mechanisms", "turbo"])
