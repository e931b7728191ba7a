"""The README's demo command works: it runs the scripted tour and exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from roadie.embedded import EmbeddedRedis

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_to_completion(tmp_path: Path) -> None:
    env_dir = tmp_path / "redis"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--dir", str(env_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "demo OK" in out
    assert "6 processed, 1 failed and retried" in out
    assert "attempt 2 for EUR succeeded" in out
    assert "left in queues: 0, retry set: 0, dead set: 0" in out
    # The demo stopped its embedded Redis: nothing answers for that folder any more.
    assert not EmbeddedRedis(env_dir).running
