"""Shared by the framework-integration tests: where the examples are, and the Python
that runs their commands."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

PYTHON = sys.executable
