"""roadie.speedups: every speed mechanism has a switch that is wired, documented, and
turned off by ``speedups_off``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roadie.config import Config, load
from roadie.errors import ConfigError
from roadie.speedups import NAMES, SPEEDUPS

SRC = Path(__file__).resolve().parents[2] / "src" / "roadie"
INTERNALS = Path(__file__).resolve().parents[2] / "docs" / "internals.md"


def test_every_mechanism_is_switched_somewhere_in_the_code() -> None:
    code = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    switched = set(re.findall(r'speedup\("([a-z_]+)"\)', code))
    assert switched == NAMES


def test_every_mechanism_is_in_the_table_of_internals_md() -> None:
    text = INTERNALS.read_text()
    for s in SPEEDUPS:
        assert f"| `{s.name}` |" in text, s.name


def test_all_turns_every_one_off_and_names_turn_those_off() -> None:
    assert set(Config(speedups_off=("all",)).speedups_off) == NAMES
    config = load(env={"ROADIE_SPEEDUPS_OFF": "batch, steal"})
    assert config.speedups_off == ("batch", "steal")
    assert not config.speedup("batch") and not config.speedup("steal")
    assert config.speedup("park")
    assert Config().speedup("batch")


def test_an_unknown_name_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no such mechanism: bach; the mechanisms are batch"):
        Config(speedups_off=("bach",))
