"""ablation.py's plan: which workloads each speed mechanism is measured on (no process
is started)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from roadie.speedups import SPEEDUPS

ABLATION = Path(__file__).resolve().parents[2] / "benchmarks" / "ablation.py"


@pytest.fixture(scope="module")
def ablation() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ablation_under_test", ABLATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


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
