"""Fuzzing configuration: arbitrary environment values and TOML documents.

``roadie.config.load`` must give a ``Config`` or a ``ConfigError`` whose message
names the setting or the file; never a TypeError or ValueError from deep inside.
(tests/unit/test_properties.py covers queue specs alone.)
"""

from __future__ import annotations

import dataclasses
import math
import string
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from roadie.config import Config, load
from roadie.errors import ConfigError

SETTINGS = sorted(f.name for f in dataclasses.fields(Config)
                  if f.name not in ("extra", "redis_url_configured"))

env_values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "-1", "0", "0.5", "1_000", " 3 ",
                     "true", "", "1" * 5000, "critical", "json", "a,b", "a,1 b,2"]),
    st.integers(min_value=-5, max_value=100).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def check(make: Any) -> Config | None:
    try:
        config = make()
    except ConfigError as exc:
        message = str(exc)
        assert message and "Traceback" not in message
        return None
    assert isinstance(config, Config)
    for name in ("timeout_s", "heartbeat_interval_s", "process_ttl_s", "janitor_interval_s",
                 "dead_timeout_s", "poll_interval_average_s", "socket_timeout_s",
                 "connect_timeout_s"):
        assert math.isfinite(getattr(config, name)), f"{name} = {getattr(config, name)}"
    assert config.concurrency >= 1 and config.queues
    return config


@FUZZ
@given(st.dictionaries(st.sampled_from(SETTINGS).map(lambda n: "ROADIE_" + n.upper()),
                       env_values, max_size=4))
def test_load_from_arbitrary_environment(env: dict[str, str]) -> None:
    check(lambda: load(env=env, config_file=None))


@FUZZ
@given(st.sampled_from(SETTINGS), env_values)
def test_load_from_one_arbitrary_setting(name: str, value: str) -> None:
    check(lambda: load(env={"ROADIE_" + name.upper(): value}, config_file=None))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "NaN"])
@pytest.mark.parametrize("name", ["timeout_s", "heartbeat_interval_s", "janitor_interval_s"])
def test_non_finite_times_are_refused(name: str, value: str) -> None:
    env = f"ROADIE_{name.upper()}"
    with pytest.raises(ConfigError, match=f"'{name}' in environment variable {env} must be a "
                                          "finite number"):
        load(env={env: value}, config_file=None)


# --- TOML documents ------------------------------------------------------------------
def toml_value(draw: st.DrawFn, depth: int = 0) -> str:
    kinds = ["int", "float", "str", "bool", "date", "special"]
    if depth < 2:
        kinds += ["array", "inline"]
    kind = draw(st.sampled_from(kinds))
    if kind == "int":
        return str(draw(st.integers(min_value=-(2**63), max_value=2**63 - 1)))
    if kind == "float":
        return repr(draw(st.floats(allow_nan=False, allow_infinity=False)))
    if kind == "special":
        return draw(st.sampled_from(["nan", "inf", "-inf", "+inf", "0x1F", "1_000", "1e9"]))
    if kind == "str":
        text = draw(st.text(alphabet=string.printable.replace("\\", "").replace('"', "")
                            .replace("\n", "").replace("\r", "").replace("\x0b", "")
                            .replace("\x0c", ""), max_size=10))
        return f'"{text}"'
    if kind == "bool":
        return draw(st.sampled_from(["true", "false"]))
    if kind == "date":
        return draw(st.sampled_from(["1979-05-27", "1979-05-27T07:32:00Z", "07:32:00"]))
    items = [toml_value(draw, depth + 1) for _ in range(draw(st.integers(0, 3)))]
    if kind == "array":
        return "[" + ", ".join(items) + "]"
    keys = draw(st.lists(st.sampled_from(["cron", "class", "args", "tz", "x"]),
                         min_size=len(items), max_size=len(items), unique=True))
    return "{" + ", ".join(f"{k} = {v}" for k, v in zip(keys, items, strict=True)) + "}"


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append("[roadie]")
    names = [*SETTINGS, "unknown_setting"]
    for name in draw(st.lists(st.sampled_from(names), max_size=5, unique=True)):
        if name == "periodic" and draw(st.booleans()):
            continue
        lines.append(f"{name} = {toml_value(draw)}")
    for _ in range(draw(st.integers(0, 2))):  # [[roadie.periodic]] or [[periodic]] tables
        lines.append(draw(st.sampled_from(["[[roadie.periodic]]", "[[periodic]]"])))
        for key in draw(st.lists(st.sampled_from(["cron", "class", "args", "tz", "queue",
                                                  "name", "missed", "grace_s", "bad"]),
                                 max_size=5, unique=True)):
            value = draw(st.one_of(
                st.just(toml_value(draw)),
                st.sampled_from(['"*/5 * * * *"', '"Some::Job"', '"UTC"', '"skip"', "[1, 2]",
                                 '"61 * * * *"', '"0 0 30 2 *"', '"Mars/Olympus"'])))
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


@FUZZ
@given(toml_documents())
def test_load_from_arbitrary_toml_documents(tmp_path_factory: pytest.TempPathFactory,
                                            text: str) -> None:
    path = tmp_path_factory.mktemp("toml") / "roadie.toml"
    path.write_text(text)
    check(lambda: load(env={}, config_file=path))


@FUZZ
@given(st.text(max_size=200))
def test_load_from_arbitrary_text_files(tmp_path_factory: pytest.TempPathFactory,
                                        text: str) -> None:
    path: Path = tmp_path_factory.mktemp("text") / "roadie.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(lambda: load(env={}, config_file=path))
