"""cron.py: periodic schedules, their checks, their ticks, and the config file's tables."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import roadie
from roadie import config as config_mod
from roadie.cron import Schedule, Schedules, from_table, make_schedule, periodic
from roadie.errors import ConfigError
from roadie.registry import Registry

PARIS = ZoneInfo("Europe/Paris")
registry = Registry()


class SyncRates(roadie.Job, registry=registry, name="app.SyncRates", queue="rates"):
    def perform(self, currency: str) -> None:
        pass


@roadie.job(registry=registry, name="app.cleanup")
def cleanup() -> None:
    pass


def ts(*parts: int, tz: ZoneInfo | None = None) -> float:
    return datetime(*parts, tzinfo=tz or UTC).timestamp()  # type: ignore[misc]


def local(at: float, tz: ZoneInfo = PARIS) -> str:
    return datetime.fromtimestamp(at, tz).isoformat()


# --- building and checking ---------------------------------------------------------
def test_defaults_from_a_job_class() -> None:
    s = make_schedule("*/5 * * * *", SyncRates, ["EUR"])
    assert s == Schedule(
        name="app.SyncRates", cron="*/5 * * * *", job_name="app.SyncRates", args=("EUR",),
        tz="UTC", queue=None, missed="run_once", grace_s=60.0,
    )
    assert s.definition() == {
        "name": "app.SyncRates", "cron": "*/5 * * * *", "class": "app.SyncRates",
        "args": ["EUR"], "tz": "UTC", "queue": None, "missed": "run_once", "grace_s": 60.0,
    }


def test_job_function_and_job_name_and_every_option() -> None:
    assert make_schedule("0 3 * * *", cleanup).job_name == "app.cleanup"
    s = make_schedule("0 3 * * *", "RubyReport", [1, {"a": [True, None]}], tz="Europe/Paris",
                      name="nightly", queue="ruby", missed="skip", grace_s=5)
    assert s == Schedule("nightly", "0 3 * * *", "RubyReport", (1, {"a": [True, None]}),
                         "Europe/Paris", "ruby", "skip", 5.0)


@pytest.mark.parametrize("cron", ["bad", "61 * * * *", "* * * *", "* * * * * * * *", ""])
def test_bad_cron_is_a_config_error_naming_it(cron: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_schedule(cron, SyncRates)
    assert str(info.value) == (
        f"periodic job 'app.SyncRates': {cron!r} is not a valid cron expression (five "
        "fields 'minute hour day month weekday', or six with seconds last, as in "
        "'*/5 * * * *')"
    )


def test_cron_that_never_fires_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"'0 0 30 2 \*' never fires"):
        make_schedule("0 0 30 2 *", SyncRates)


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_unknown_time_zone_is_a_config_error(tz: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_schedule("* * * * *", SyncRates, tz=tz)
    assert str(info.value) == (
        f"periodic job 'app.SyncRates': unknown time zone {tz!r} (use an IANA name such as "
        "'Europe/Paris' or 'UTC')"
    )


def test_other_bad_options() -> None:
    with pytest.raises(ConfigError, match=r"missed must be one of \('run_once', 'skip'\)"):
        make_schedule("* * * * *", SyncRates, missed="all")
    with pytest.raises(ConfigError, match="grace_s must be a number of seconds >= 0"):
        make_schedule("* * * * *", SyncRates, grace_s=-1)
    with pytest.raises(ConfigError, match="queue must be a non-empty string"):
        make_schedule("* * * * *", SyncRates, queue="")
    with pytest.raises(ConfigError, match="args must be a list, got str"):
        make_schedule("* * * * *", SyncRates, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="name must be a non-empty string"):
        make_schedule("* * * * *", SyncRates, name="")
    with pytest.raises(ConfigError, match=r"not a roadie\.Job class"):
        make_schedule("* * * * *", object)  # type: ignore[arg-type]


def test_arguments_get_the_push_time_json_check() -> None:
    with pytest.raises(ConfigError) as info:
        make_schedule("* * * * *", SyncRates, [datetime(2024, 1, 1)])
    assert "args[0]" in str(info.value)
    assert str(info.value).startswith("periodic job 'app.SyncRates'")


# --- the set of schedules --------------------------------------------------------
def test_schedules_refuse_two_definitions_under_one_name() -> None:
    schedules = Schedules()
    periodic("*/5 * * * *", SyncRates, ["EUR"], schedules=schedules)
    # The same definition again (a module imported twice) is fine.
    periodic("*/5 * * * *", SyncRates, ["EUR"], schedules=schedules)
    with pytest.raises(ConfigError) as info:
        periodic("*/5 * * * *", SyncRates, ["USD"], schedules=schedules)
    assert "two periodic jobs are named 'app.SyncRates'" in str(info.value)
    assert "give each its own name=..." in str(info.value)
    periodic("*/5 * * * *", SyncRates, ["USD"], name="rates-usd", schedules=schedules)
    assert schedules.names() == ["app.SyncRates", "rates-usd"]
    assert [s.args for s in schedules] == [("EUR",), ("USD",)]
    assert len(schedules) == 2
    assert "rates-usd" in schedules
    schedules.remove("rates-usd")
    assert schedules.names() == ["app.SyncRates"]
    schedules.clear()
    assert len(schedules) == 0


def test_periodic_adds_to_the_default_schedules() -> None:
    try:
        s = periodic("0 * * * *", SyncRates, ["GBP"], name="test-default-schedules")
        assert roadie.default_schedules.get("test-default-schedules") is s
        assert roadie.periodic is periodic
    finally:
        roadie.default_schedules.remove("test-default-schedules")
    assert "test-default-schedules" not in roadie.default_schedules


# --- ticks -------------------------------------------------------------------------
def test_next_after_is_strict_and_latest_includes_an_exact_tick() -> None:
    s = make_schedule("*/5 * * * *", SyncRates)
    t = ts(2024, 5, 1, 12, 0)
    assert s.next_after(t) == t + 300
    assert s.next_after(t - 0.5) == t
    assert s.latest_at_or_before(t) == t
    assert s.latest_at_or_before(t + 0.999) == t
    assert s.latest_at_or_before(t - 0.001) == t - 300


def test_six_fields_means_seconds_last() -> None:
    s = make_schedule("* * * * * */2", SyncRates)
    t = ts(2024, 5, 1, 12, 0, 0)
    assert s.next_after(t) == t + 2
    assert s.latest_at_or_before(t + 3.5) == t + 2


def test_ticks_follow_the_time_zone_across_daylight_saving() -> None:
    s = make_schedule("0 3 * * *", SyncRates, tz="Europe/Paris")
    summer = s.next_after(ts(2024, 7, 1))
    winter = s.next_after(ts(2024, 12, 1))
    assert datetime.fromtimestamp(summer, UTC).hour == 1
    assert datetime.fromtimestamp(winter, UTC).hour == 2
    assert local(summer) == "2024-07-01T03:00:00+02:00"
    assert local(winter) == "2024-12-01T03:00:00+01:00"


def test_a_skipped_local_hour_runs_at_the_jump() -> None:
    # 2024-03-31 02:30 does not exist in Paris: clocks go from 02:00 to 03:00.
    s = make_schedule("30 2 * * *", SyncRates, tz="Europe/Paris")
    ticks = [s.next_after(ts(2024, 3, 30, 12, tz=PARIS))]
    ticks.append(s.next_after(ticks[-1]))
    assert [local(t) for t in ticks] == [
        "2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00",
    ]


def test_every_half_hour_across_the_autumn_change_is_every_half_hour() -> None:
    s = make_schedule("*/30 * * * *", SyncRates, tz="Europe/Paris")
    at = ts(2024, 10, 27, 1, 50, tz=PARIS)
    ticks = []
    for _ in range(5):
        at = s.next_after(at)
        ticks.append(at)
    assert [b - a for a, b in itertools.pairwise(ticks)] == [1800.0] * 4
    assert local(ticks[0]) == "2024-10-27T02:00:00+02:00"
    assert local(ticks[2]) == "2024-10-27T02:00:00+01:00"


# --- config file -------------------------------------------------------------------
def test_from_table() -> None:
    s = from_table({"cron": "0 3 * * *", "class": "app.Report", "args": [1], "tz": "UTC",
                    "queue": "low", "name": "report", "missed": "skip", "grace_s": 30},
                   "roadie.toml")
    assert s == Schedule("report", "0 3 * * *", "app.Report", (1,), "UTC", "low", "skip", 30.0)


@pytest.mark.parametrize(("table", "message"), [
    ({"class": "A"}, "roadie.toml: a periodic entry needs 'cron'"),
    ({"cron": "* * * * *"}, "roadie.toml: a periodic entry needs 'class'"),
    ({"cron": "* * * * *", "class": "A", "every": 5},
     "roadie.toml: unknown key(s) every in a periodic entry (allowed: cron, class, args, tz, "
     "queue, name, missed, grace_s)"),
    ({"cron": "* * * * *", "class": 5}, "roadie.toml: 'class' must be a job name string, got 5"),
])
def test_from_table_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_table(table, "roadie.toml")
    assert str(info.value) == message


def test_config_file_under_roadie(tmp_path: Path) -> None:
    path = tmp_path / "roadie.toml"
    path.write_text(
        '[roadie]\nconcurrency = 3\n\n'
        '[[roadie.periodic]]\ncron = "*/5 * * * *"\nclass = "app.SyncRates"\nargs = ["EUR"]\n'
        'tz = "Europe/Paris"\n\n'
        '[[roadie.periodic]]\ncron = "0 3 * * *"\nclass = "app.Report"\nname = "nightly"\n'
    )
    cfg = config_mod.load(env={}, config_file=path)
    assert cfg.concurrency == 3
    assert cfg.periodic == (
        Schedule("app.SyncRates", "*/5 * * * *", "app.SyncRates", ("EUR",), "Europe/Paris"),
        Schedule("nightly", "0 3 * * *", "app.Report"),
    )


def test_config_file_top_level_tables(tmp_path: Path) -> None:
    flat = tmp_path / "flat.toml"
    flat.write_text('concurrency = 2\n[[periodic]]\ncron = "* * * * *"\nclass = "A"\n')
    assert config_mod.load(env={}, config_file=flat).periodic == (Schedule("A", "* * * * *", "A"),)
    mixed = tmp_path / "mixed.toml"
    mixed.write_text('[roadie]\nconcurrency = 2\n[[periodic]]\ncron = "* * * * *"\nclass = "A"\n')
    assert config_mod.load(env={}, config_file=mixed).periodic == (
        Schedule("A", "* * * * *", "A"),
    )


def test_config_file_with_a_bad_cron_fails_at_load(tmp_path: Path) -> None:
    path = tmp_path / "roadie.toml"
    path.write_text('[[roadie.periodic]]\ncron = "every day"\nclass = "A"\n')
    with pytest.raises(ConfigError, match="'every day' is not a valid cron expression"):
        config_mod.load(env={}, config_file=path)
    path.write_text('[roadie]\nperiodic = "x"\n')
    with pytest.raises(ConfigError, match=r"must be \[\[roadie.periodic\]\] tables"):
        config_mod.load(env={}, config_file=path)


def test_periodic_jobs_cannot_come_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="periodic jobs in environment variable ROADIE_PERIODIC"):
        config_mod.load(env={"ROADIE_PERIODIC": "* * * * * A"})
