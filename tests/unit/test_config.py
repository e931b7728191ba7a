"""config.py: defaults, queue specs, CLI > env > file > defaults (no Redis)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from roadie.config import DEFAULT_REDIS_URL, Config, load, parse_queue, read_env
from roadie.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_roadie_toml_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # load() also reads ./roadie.toml: run every test in an empty folder.
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "roadie-test.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- defaults --------------------------------------------------------------------


def test_defaults() -> None:
    cfg = Config()
    assert cfg.concurrency == 10
    assert cfg.timeout_s == 25.0
    assert cfg.queues == (("default", 0),)
    assert cfg.max_retries == 25
    assert cfg.dead_max_jobs == 10_000
    assert cfg.dead_timeout_s == 180 * 24 * 3600 == 15_552_000
    assert cfg.redis_url == DEFAULT_REDIS_URL
    assert cfg.redis_url_configured is False
    assert cfg.namespace == ""
    assert cfg.strict is True
    assert cfg.queue_names == ("default",)


def test_load_with_nothing_set_gives_the_defaults() -> None:
    assert load(cli={}, env={}) == Config()


def test_config_is_frozen() -> None:
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.concurrency = 3  # type: ignore[misc]
    assert cfg.replace(concurrency=3).concurrency == 3
    assert cfg.concurrency == 10


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"queues": ()}, "at least one queue"),
        ({"timeout_s": -1.0}, "timeout_s must be a number of seconds from 0 to 86400"),
        ({"log_format": "xml"}, "log_format must be 'plain' or 'json'"),
        ({"max_crashes": 0}, "max_crashes must be at least 1"),
        ({"event_loop": "trio"}, "event_loop must be 'auto', 'uvloop' or 'asyncio'"),
    ],
)
def test_invalid_values_raise_config_error(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(**changes)  # type: ignore[arg-type]


def test_event_loop_uvloop_without_uvloop_says_how_to_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvloop" else real(name, *a))
    with pytest.raises(ConfigError, match="pip install uvloop"):
        Config(event_loop="uvloop")
    assert Config(event_loop="auto").event_loop == "auto"


# --- queues ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("critical,2", ("critical", 2)),
        ("critical", ("critical", 0)),
        (" critical , 3 ", ("critical", 3)),
        ("low,0", ("low", 0)),
        ("critical,", ("critical", 0)),
        (["critical", 2], ("critical", 2)),
        (["critical", "2"], ("critical", 2)),
        (["critical"], ("critical", 0)),
        (("mail", 5), ("mail", 5)),
    ],
)
def test_parse_queue(spec: object, expected: tuple[str, int]) -> None:
    assert parse_queue(spec) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("critical,x", r"queue weight in 'critical,x' must be an integer \(as in 'critical,2'\)"),
        ("critical,1.5", "must be an integer"),
        ("critical,-1", "must not be negative"),
        (",2", "has no queue name"),
        ("", "has no queue name"),
        ("   ", "has no queue name"),
        (["", 1], "has no queue name"),
        (["critical", "high"], "must be an integer"),
        ([], r"must be \[name\] or \[name, weight\]"),
        (["a", 1, 2], r"must be \[name\] or \[name, weight\]"),
    ],
)
def test_parse_queue_errors(spec: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_queue(spec)  # type: ignore[arg-type]


def test_strict_unless_some_queue_has_a_weight() -> None:
    assert Config(queues=(("critical", 0), ("default", 0))).strict is True
    assert Config(queues=(("critical", 2), ("default", 1))).strict is False
    assert Config(queues=(("critical", 0), ("default", 1))).strict is False


def test_queue_names_are_deduplicated_in_order() -> None:
    cfg = Config(queues=(("b", 1), ("a", 2), ("b", 3)))
    assert cfg.queue_names == ("b", "a")


# --- sources and precedence -----------------------------------------------------


def test_file_top_level(tmp_path: Path) -> None:
    path = write(tmp_path, 'concurrency = 4\nqueues = [["critical", 2], "default"]\n')
    cfg = load(cli={}, env={}, config_file=path)
    assert cfg.concurrency == 4
    assert cfg.queues == (("critical", 2), ("default", 0))
    assert cfg.strict is False


def test_file_roadie_table(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[roadie]\nconcurrency = 7\ntimeout_s = 8\nqueues = ["critical,3", "low"]\n'
        'require = ["app.jobs"]\nredis_url = "redis://file:6379/1"\n',
    )
    cfg = load(cli={}, env={}, config_file=path)
    assert (cfg.concurrency, cfg.timeout_s) == (7, 8.0)
    assert cfg.queues == (("critical", 3), ("low", 0))
    assert cfg.require == ("app.jobs",)
    assert cfg.redis_url == "redis://file:6379/1"
    assert cfg.redis_url_configured is True


def test_roadie_toml_in_the_working_folder_is_read(tmp_path: Path) -> None:
    write(tmp_path, "concurrency = 3\n", name="roadie.toml")
    assert load(cli={}, env={}).concurrency == 3


def test_roadie_config_env_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "max_retries = 2\n", name="elsewhere.toml")
    assert load(cli={}, env={"ROADIE_CONFIG": str(path)}).max_retries == 2


def test_precedence_cli_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[roadie]\nconcurrency = 2\ntimeout_s = 3\nmax_retries = 4\ntag = 'file'\n",
    )
    env = {"ROADIE_CONCURRENCY": "20", "ROADIE_TIMEOUT_S": "30", "ROADIE_TAG": "env"}
    cli = {"concurrency": 200, "tag": None}
    cfg = load(cli=cli, env=env, config_file=path)
    assert cfg.concurrency == 200  # CLI
    assert cfg.timeout_s == 30.0  # env beats file
    assert cfg.tag == "env"  # a CLI None means "not given"
    assert cfg.max_retries == 4  # file beats default
    assert cfg.dead_max_jobs == 10_000  # default


def test_cli_queue_tuples_are_taken_as_parsed() -> None:
    cfg = load(cli={"queues": (("critical", 2), ("default", 1))}, env={})
    assert cfg.queues == (("critical", 2), ("default", 1))


def test_cli_values_are_coerced() -> None:
    cfg = load(cli={"concurrency": "12", "queues": ["a,1", "b"]}, env={})
    assert cfg.concurrency == 12
    assert cfg.queues == (("a", 1), ("b", 0))


def test_env_queues_and_lists() -> None:
    env = {"ROADIE_QUEUES": "critical,2 default", "ROADIE_REQUIRE": "app.jobs, app.more"}
    cfg = load(cli={}, env=env)
    assert cfg.queues == (("critical", 2), ("default", 0))
    assert cfg.require == ("app.jobs", "app.more")
    assert cfg.strict is False


def test_env_bad_queue_weight() -> None:
    with pytest.raises(ConfigError, match="must be an integer"):
        load(cli={}, env={"ROADIE_QUEUES": "critical,high default"})


def test_redis_url_from_env() -> None:
    cfg = load(cli={}, env={"REDIS_URL": "redis://env:6379/2"})
    assert cfg.redis_url == "redis://env:6379/2"
    assert cfg.redis_url_configured is True


def test_redis_provider_names_the_variable() -> None:
    env = {
        "REDIS_PROVIDER": "REDISTOGO_URL",
        "REDISTOGO_URL": "redis://provider:6379/0",
        "REDIS_URL": "redis://ignored:6379/0",
    }
    assert load(cli={}, env=env).redis_url == "redis://provider:6379/0"


def test_redis_provider_naming_an_empty_variable_falls_back_to_redis_url() -> None:
    env = {"REDIS_PROVIDER": "MISSING_URL", "REDIS_URL": "redis://fallback:6379/0"}
    assert read_env(env)["redis_url"] == "redis://fallback:6379/0"


def test_roadie_redis_url_env_and_cli_override(tmp_path: Path) -> None:
    path = write(tmp_path, 'redis_url = "redis://file:1/0"\n')
    env = {"REDIS_URL": "redis://env:1/0"}
    assert load(cli={}, env=env, config_file=path).redis_url == "redis://env:1/0"
    cli = {"redis_url": "redis://cli:1/0"}
    assert load(cli=cli, env=env, config_file=path).redis_url == "redis://cli:1/0"
    assert read_env({"ROADIE_REDIS_URL": "redis://r:1/0"})["redis_url"] == "redis://r:1/0"


def test_redis_url_configured_only_when_a_source_gave_one() -> None:
    unset = load(cli={"redis_url": None}, env={"ROADIE_CONCURRENCY": "3"})
    assert unset.redis_url_configured is False
    assert load(cli={"redis_url": "redis://x:1/0"}, env={}).redis_url_configured is True


def test_env_ignores_other_programs_roadie_variables() -> None:
    # ROADIE_REDIS_SERVER belongs to the embedded server, ROADIE_CONFIG names the file.
    env = {"ROADIE_REDIS_SERVER": "/usr/bin/redis-server", "ROADIE_CONFIG": ""}
    assert load(cli={}, env=env) == Config()


# --- errors ------------------------------------------------------------------------


def test_unknown_key_in_file(tmp_path: Path) -> None:
    path = write(tmp_path, "concurency = 4\n")
    with pytest.raises(ConfigError, match=rf"unknown setting 'concurency' in {path}"):
        load(cli={}, env={}, config_file=path)


def test_unknown_key_on_the_command_line() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'bogus' in the command line"):
        load(cli={"bogus": 1}, env={})


def test_unknown_key_given_already_parsed() -> None:
    with pytest.raises(ConfigError, match="unexpected keyword argument 'bogus'"):
        load(cli={"bogus": ("a", "b")}, env={})


def test_internal_fields_cannot_be_set() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'redis_url_configured'"):
        load(cli={"redis_url_configured": True}, env={})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ROADIE_CONCURRENCY": "ten"}, r"setting 'concurrency' in environment variable "
         r"ROADIE_CONCURRENCY must be a number, got 'ten'"),
        ({"ROADIE_CONCURRENCY": "2.5"}, "'concurrency' .* must be a number"),
        ({"ROADIE_TIMEOUT_S": "soon"}, "'timeout_s' .* must be a number, got 'soon'"),
        ({"ROADIE_TIMEOUT_S": ""}, "'timeout_s' .* must be a number, got ''"),
        ({"ROADIE_CONCURRENCY": "0"}, "concurrency must be at least 1, got 0 "
         r"\(from environment variable ROADIE_CONCURRENCY\)"),
    ],
)
def test_bad_numbers_in_env(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(cli={}, env=env)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('concurrency = "many"', "'concurrency' in .* must be a number, got 'many'"),
        ("concurrency = 2.5", "'concurrency' in .* must be a number, got 2.5"),
        ("concurrency = true", "'concurrency' in .* must be a number, got True"),
        ("max_retries = inf", "'max_retries' in .* must be a number, got inf"),
        ("timeout_s = [1]", r"'timeout_s' in .* must be a number, got \[1\]"),
        ("timeout_s = false", "'timeout_s' in .* must be a number, got False"),
    ],
)
def test_bad_numbers_in_file(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, line + "\n")
    with pytest.raises(ConfigError, match=message):
        load(cli={}, env={}, config_file=path)


def test_integral_float_is_fine_for_an_int_setting(tmp_path: Path) -> None:
    path = write(tmp_path, "concurrency = 4.0\n")
    assert load(cli={}, env={}, config_file=path).concurrency == 4


def test_optional_poll_interval_accepts_empty() -> None:
    assert load(cli={}, env={"ROADIE_POLL_INTERVAL_FIXED_S": ""}).poll_interval_fixed_s is None
    assert load(cli={}, env={"ROADIE_POLL_INTERVAL_FIXED_S": "0.5"}).poll_interval_fixed_s == 0.5


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(cli={}, env={}, config_file=tmp_path / "nope.toml")


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "concurrency = = 3\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load(cli={}, env={}, config_file=path)


def test_roadie_must_be_a_table(tmp_path: Path) -> None:
    path = write(tmp_path, 'roadie = "x"\n')
    with pytest.raises(ConfigError, match=r"\[roadie\] must be a table"):
        load(cli={}, env={}, config_file=path)


def test_bad_queue_in_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'queues = ["critical,-2"]\n')
    with pytest.raises(ConfigError, match="must not be negative"):
        load(cli={}, env={}, config_file=path)


# --- ranges (issue 17, item 7) ----------------------------------------------------------


def test_every_number_has_a_range() -> None:
    from roadie.config import _FLOAT, _INT, _RANGES

    assert set(_RANGES) | {"poll_interval_fixed_s"} == _INT | _FLOAT


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # 197 pulse processes in 10 s.
        ({"ROADIE_HEARTBEAT_INTERVAL_S": "-5"},
         r"heartbeat_interval_s must be a number of seconds from 0.05 to 30 \(the process "
         r"hash it refreshes expires after 60 s\), got -5 \(from environment variable "
         r"ROADIE_HEARTBEAT_INTERVAL_S\)"),
        ({"ROADIE_HEARTBEAT_INTERVAL_S": "45", "ROADIE_PROCESS_TTL_S": "100"},
         "heartbeat_interval_s must be .* to 30 .*got 45"),
        # 5,000 commands a second from an idle process.
        ({"ROADIE_JANITOR_INTERVAL_S": "0"},
         r"janitor_interval_s must be a number of seconds from 0.05 to 3600, got 0 "
         r"\(from environment variable ROADIE_JANITOR_INTERVAL_S\)"),
        ({"ROADIE_POLL_INTERVAL_AVERAGE_S": "0"}, "poll_interval_average_s must be .*got 0"),
        ({"ROADIE_POLL_INTERVAL_FIXED_S": "-1"}, "poll_interval_fixed_s must be .*got -1"),
        ({"ROADIE_SOCKET_TIMEOUT_S": "0"}, "socket_timeout_s must be .* from 0.01 to 3600"),
        ({"ROADIE_CONNECT_TIMEOUT_S": "-3"}, "connect_timeout_s must be .*got -3"),
        ({"ROADIE_TIMEOUT_S": "1e9"}, "timeout_s must be .* from 0 to 86400.*got 1e\\+09"),
        ({"ROADIE_DEAD_TIMEOUT_S": "0"}, "dead_timeout_s must be a number of seconds from 1"),
        ({"ROADIE_DEAD_MAX_JOBS": "0"}, "dead_max_jobs must be at least 1 .*dead=False"),
        ({"ROADIE_MAX_RETRIES": "-1"}, "max_retries must be at least 0, got -1"),
        ({"ROADIE_MAX_CRASHES": "0"}, "max_crashes must be at least 1, got 0"),
        ({"ROADIE_PROCESSES": "0"}, "processes must be at least 1, got 0"),
        ({"ROADIE_MAX_MEMORY_MB": "-5"}, r"max_memory_mb must be at least 0 \(a number of MB, or "
         r"0 for no limit\), got -5"),
        ({"ROADIE_PROCESS_TTL_S": "6"},
         r"process_ttl_s must be at least twice heartbeat_interval_s and 1 s longer than it "
         r"\(10 with heartbeat_interval_s 5\), got 6 \(from environment variable "
         r"ROADIE_PROCESS_TTL_S\): otherwise one late beat"),
        ({"ROADIE_HEARTBEAT_INTERVAL_S": "0.5", "ROADIE_PROCESS_TTL_S": "1.2"},
         r"\(1.5 with heartbeat_interval_s 0.5 \(from environment variable "
         r"ROADIE_HEARTBEAT_INTERVAL_S\)\), got 1.2"),
    ],
)
def test_out_of_range_values_name_the_variable_the_value_and_the_range(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(cli={}, env=env)


def test_out_of_range_value_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[roadie]\njanitor_interval_s = 0\n")
    with pytest.raises(ConfigError, match=rf"janitor_interval_s must be .*, got 0 \(from {path}\)"):
        load(cli={}, env={}, config_file=path)


def test_out_of_range_flag_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"concurrency must be at least 1, got -2 "
                                          r"\(from -c/--concurrency\)"):
        load(cli={"concurrency": -2}, env={}, cli_flags={"concurrency": "-c/--concurrency"})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", ["timeout_s", "heartbeat_interval_s", "process_ttl_s",
                                  "janitor_interval_s", "socket_timeout_s", "dead_timeout_s",
                                  "connect_timeout_s", "poll_interval_average_s",
                                  "poll_interval_fixed_s"])
def test_non_finite_values_given_directly_are_refused(name: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be"):
        Config(**{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("env", [
    {},  # the defaults
    # tests/support/procs.py FAST_ENV and DEFAULT_ENV, tests/ha HA_ENV, tests/interop
    {"ROADIE_HEARTBEAT_INTERVAL_S": "0.5", "ROADIE_PROCESS_TTL_S": "2",
     "ROADIE_JANITOR_INTERVAL_S": "0.5", "ROADIE_POLL_INTERVAL_FIXED_S": "0.5",
     "ROADIE_SOCKET_TIMEOUT_S": "3", "ROADIE_CONNECT_TIMEOUT_S": "1"},
    {"ROADIE_HEARTBEAT_INTERVAL_S": "5", "ROADIE_PROCESS_TTL_S": "15",
     "ROADIE_JANITOR_INTERVAL_S": "5"},
    {"ROADIE_HEARTBEAT_INTERVAL_S": "0.5", "ROADIE_PROCESS_TTL_S": "3"},
    {"ROADIE_HEARTBEAT_INTERVAL_S": "0.05", "ROADIE_MAX_CRASHES": "1000000",
     "ROADIE_MAX_RETRIES": "0", "ROADIE_TIMEOUT_S": "0"},
])
def test_the_settings_the_tests_and_defaults_use_are_valid(env: dict[str, str]) -> None:
    load(cli={}, env=env)


def test_label_names_the_setting_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, "concurrency = 4\n")
    assert load(cli={}, env={}, config_file=path).label("concurrency") == f"concurrency in {path}"
    assert load(cli={}, env={"ROADIE_CONCURRENCY": "3"}).label("concurrency") == (
        "ROADIE_CONCURRENCY")
    flags = {"concurrency": "-c/--concurrency"}
    assert load(cli={"concurrency": 3}, env={}, cli_flags=flags).label("concurrency") == (
        "-c/--concurrency")
    assert Config().label("concurrency") == "concurrency"


def test_socket_timeout_shorter_than_a_blocking_fetch_is_refused_for_roadie_run() -> None:
    from roadie.check import fetch_timeout_problem

    problem = fetch_timeout_problem(load(cli={}, env={"ROADIE_SOCKET_TIMEOUT_S": "2"}))
    assert problem == (
        "socket_timeout_s must be at least 3 for roadie run, got 2 (from environment "
        "variable ROADIE_SOCKET_TIMEOUT_S): an idle processor waits 2 s for a job in one "
        "Redis command, which a shorter timeout cuts as an outage (and no dead process's "
        "jobs get recovered)"
    )
    assert fetch_timeout_problem(Config(socket_timeout_s=3.0)) is None
    assert fetch_timeout_problem(Config()) is None
    # A client that only pushes jobs may use a short timeout.
    assert Config(socket_timeout_s=0.3).socket_timeout_s == 0.3
