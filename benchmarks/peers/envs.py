"""Virtualenvs of the Python peers of ``benchmarks/bench.py``.

``ensure_env(peer)`` creates ``benchmarks/.venvs/<peer>/`` with ``python3 -m venv`` and
installs ``benchmarks/peers/<peer>-requirements.txt`` (pinned) into it with pip. A stamp
file holding the requirements file's SHA-256 makes it idempotent: a second call with the
same requirements does nothing; a changed file reinstalls. Uses only the standard library.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE.parent / ".venvs"
STAMP = ".bench-requirements.sha256"


def requirements(peer: str) -> Path:
    path = HERE / f"{peer}-requirements.txt"
    if not path.exists():
        known = sorted(p.name.removesuffix("-requirements.txt")
                       for p in HERE.glob("*-requirements.txt"))
        raise FileNotFoundError(f"no {path.name} in {HERE}; known peers: {', '.join(known)}")
    return path


def env_python(peer: str) -> Path:
    return VENVS / peer / "bin" / "python"


def base_python() -> str:
    """A python3 to create the venv with (3.11+; this interpreter if it is one)."""
    if sys.version_info >= (3, 11) and not os.environ.get("BENCH_PEER_PYTHON"):
        return sys.executable
    return os.environ.get("BENCH_PEER_PYTHON") or shutil.which("python3") or "python3"


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, check=False, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed with exit code {done.returncode}")


def ensure_env(peer: str) -> Path:
    """The python of ``peer``'s virtualenv, created and installed when needed."""
    req = requirements(peer)
    digest = hashlib.sha256(req.read_bytes()).hexdigest()
    root = VENVS / peer
    stamp = root / STAMP
    python = env_python(peer)
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    if not python.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        _run([base_python(), "-m", "venv", str(root)])
    stamp.unlink(missing_ok=True)
    _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          "-r", str(req)])
    stamp.write_text(digest + "\n")
    return python


if __name__ == "__main__":
    every = sorted(f.name.removesuffix("-requirements.txt")
                   for f in HERE.glob("*-requirements.txt"))
    for name in sys.argv[1:] or every:
        print(ensure_env(name))
