"""benchmarks/load.py end to end on a small scale, so that the load run does not rot."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.redis, pytest.mark.system]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "load.py"


def value(report: str, label_start: str) -> str:
    match = re.search(rf"^\| {re.escape(label_start)}[^|]*\| ([^|]+) \|$", report, re.M)
    assert match, f"no row {label_start!r} in:\n{report}"
    return match.group(1).strip()


def test_load_script_runs_2000_jobs_exactly_once(
    tmp_path: Path, import_from: Callable[[Path, str], ModuleType]
) -> None:
    doc = tmp_path / "load.md"
    argv = [sys.executable, str(SCRIPT), "--jobs", "2000", "--fetch-jobs", "500",
            "--deadline-s", "90", "--write", str(doc)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        out, err = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # unwinds through the script's finally blocks
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"load.py did not finish in time:\n{out}\n{err}")
    assert proc.returncode == 0, f"{out}\n{err}"
    assert value(out, "check: distinct jobs that ran") == "2,000"
    assert value(out, "check: extra runs") == "0"
    assert value(out, "check: jobs left") == "0"
    assert float(value(out, "run: RSS at all 2,000 jobs done, MB")) > 5
    assert float(value(out, "run: jobs/s").replace(",", "")) > 0
    assert int(value(out, "Redis used_memory per queued job").replace(",", "")) > 50
    assert float(value(out, "fetch: deep / shallow")) > 0
    text = doc.read_text()
    assert text.startswith("# Load: one million jobs")
    assert "<!-- benchmarks/load.py:start" in text and "<!-- benchmarks/load.py:end -->" in text
    assert "| check: extra runs, i.e. duplicates (expect 0) | 0 |" in text
    # A second --write replaces the block instead of adding another one.
    first_block = text[text.index("<!-- benchmarks/load.py:start"):]
    # The script imports its neighbours (core.py...): its folder is on sys.path meanwhile.
    module = import_from(SCRIPT.parent, SCRIPT.stem)
    module.write_doc(doc, "replaced\n")
    again = doc.read_text()
    assert again.count("<!-- benchmarks/load.py:start") == 1
    assert "replaced\n" in again and first_block not in again
