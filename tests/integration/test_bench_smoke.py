"""``benchmarks/bench.py --quick --systems roadie`` end to end, so the harness does not rot.

One real pass: bench.py starts its own private redis-server, runs every workload
through ``benchmarks/roadie_adapter.py`` (real ``roadie run`` processes) with N=5,000
and one run, renders the tables and writes them between its markers in a copy of
docs/performance.md. No Sidekiq, no peers, nothing from the network.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench.py"
DOC = ROOT / "docs" / "performance.md"

pytestmark = [pytest.mark.redis, pytest.mark.system]


def row(report: str, label_start: str) -> list[str]:
    """The cells of the first table row whose label starts with ``label_start``."""
    for line in report.splitlines():
        if line.startswith(f"| {label_start}"):
            return [c.strip() for c in line.strip().strip("|").split("|")]
    raise AssertionError(f"no row {label_start!r} in:\n{report}")


def number(text: str) -> float:
    match = re.match(r"\**([\d,.]+)", text)
    assert match, f"not a figure: {text!r}"
    return float(match.group(1).replace(",", ""))


@pytest.mark.timeout(300)
def test_quick_pass_of_roadie_fills_every_table(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    before, after = "# Performance\n\nkept above\n\n", "\n\n## Kept below\n"
    doc.write_text(f"{before}<!-- bench.py:start -->\nold table\n<!-- bench.py:end -->{after}")
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--systems", "roadie", "--write", str(doc)],
        capture_output=True, text=True, timeout=280, cwd=ROOT, check=False,
    )
    assert done.returncode == 0, f"bench.py failed:\n{done.stderr[-4000:]}\n{done.stdout[-2000:]}"
    report = done.stdout
    assert "FAILED" not in report
    # Every throughput figure is a real rate, and nothing ran twice.
    for label in ("push, one call", "push, bulk", "no-op, 10 executors in 1",
                  "no-op, 2 processes", "one-call, 10 executors in 1", "one-call, 2 processes",
                  "one-call, own client, 10 executors in 1", "one-call, own client, 2 processes",
                  "ceiling: one-call body", "ceiling: own-client"):
        assert number(row(report, label)[1]) > 100, label
    assert number(row(report, "one-call, duplicates")[1]) == 0
    assert number(row(report, "one-call, own client, duplicates")[1]) == 0
    assert "of ceiling)" in row(report, "one-call, own client, 10 executors, jobs/s from")[1]
    assert 1.0 < number(row(report, "I/O sync, 10 executors")[1]) < 30
    assert 0.0 < number(row(report, "latency, 1 queue: push→start p50")[1]) < 1000
    assert number(row(report, "memory: worker RSS after all")[1]) > 5  # MB
    # Each of issue 7's targets is evaluated; those against Sidekiq or a peer are n/a.
    verdicts = {cells[0]: cells[2] for cells in (
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in report.split("**Targets**", 1)[1].splitlines()
        if line.startswith("| ") and not line.startswith("| target"))}
    assert len(verdicts) == 18  # issue 7's 14, and 4 for the own-client one-call job
    assert verdicts["one-call: roadie -c 10 ≥ Sidekiq -c 10"] == "n/a"
    own_ceiling = ("one-call, own client: roadie -c 10 (from first heartbeat) ≥ 0.85 x "
                   "roadie's ceiling of that body")
    assert verdicts[own_ceiling] in ("PASS", "**FAIL**")
    assert "of the redis_client() ceiling" in row(report, own_ceiling)[1]
    assert all(v in ("PASS", "**FAIL**") for k, v in verdicts.items()
               if "Sidekiq" not in k and "peer" not in k)
    assert "CPU model" in report and "--quick --systems roadie" in report
    # --write replaced only what was between the markers.
    text = doc.read_text()
    assert text.startswith(before + "<!-- bench.py:start -->\n") and text.endswith(
        "<!-- bench.py:end -->" + after)
    assert "old table" not in text and "**Targets**" in text


def test_bad_selection_is_refused_with_the_choices() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--systems", "roadie,nosuch"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert done.returncode == 2
    assert "unknown system(s) nosuch" in done.stderr and "roadie" in done.stderr
