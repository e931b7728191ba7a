"""cli.py: help and the failures a newcomer meets first, as real subprocesses.

None of these reaches a Redis: the errors happen before any connection, and
``roadie check`` is pointed at port 1, where nothing listens.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from roadie import cli


def roadie(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("ROADIE_") and k not in ("REDIS_URL", "REDIS_PROVIDER")
    }
    return subprocess.run(
        [sys.executable, "-m", "roadie", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_help(tmp_path: Path) -> None:
    out = roadie(tmp_path, "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: roadie")
    for command in ("run", "check", "embedded"):
        assert command in out.stdout


def test_run_help(tmp_path: Path) -> None:
    out = roadie(tmp_path, "run", "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: roadie run")
    for option in ("--require", "--queue", "--concurrency", "--timeout", "--redis-url"):
        assert option in out.stdout


def test_check_help(tmp_path: Path) -> None:
    out = roadie(tmp_path, "check", "--help")
    assert out.returncode == 0, out.stderr
    assert "--redis-url" in out.stdout


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    out = roadie(tmp_path)
    assert out.returncode == 2
    assert "usage: roadie" in out.stderr
    assert "Traceback" not in out.stderr


def test_run_with_a_missing_module(tmp_path: Path) -> None:
    out = roadie(tmp_path, "run", "-r", "no_such_module_xyz", "--redis-url",
                 "redis://127.0.0.1:1")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr + out.stdout
    assert lines(out.stderr) == [
        "roadie: -r no_such_module_xyz: no module named 'no_such_module_xyz' (run roadie from "
        "your project's folder, or check PYTHONPATH)"
    ]


def test_run_with_a_missing_file(tmp_path: Path) -> None:
    out = roadie(tmp_path, "run", "-r", "jobs/nowhere.py", "--redis-url", "redis://127.0.0.1:1")
    assert out.returncode == 1
    assert lines(out.stderr) == ["roadie: -r jobs/nowhere.py: no such file"]


def test_run_with_a_module_that_fails_to_import_shows_its_traceback(tmp_path: Path) -> None:
    # The user's own bug: here a traceback is exactly what helps.
    (tmp_path / "brokenjobs.py").write_text("import os\nraise RuntimeError('bug in my jobs')\n")
    out = roadie(tmp_path, "run", "-r", "brokenjobs", "--redis-url", "redis://127.0.0.1:1")
    assert out.returncode == 1
    assert "error while importing your job modules" in out.stderr
    assert "RuntimeError: bug in my jobs" in out.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("a,x", "roadie: queue weight in 'a,x' must be an integer (as in 'critical,2')"),
        ("a,-1", "roadie: queue weight in 'a,-1' must not be negative"),
        (",3", "roadie: queue spec ',3' has no queue name"),
    ],
)
def test_run_with_a_bad_queue(tmp_path: Path, spec: str, message: str) -> None:
    out = roadie(tmp_path, "run", f"-q{spec}", "--redis-url", "redis://127.0.0.1:1")
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert lines(out.stderr) == [message]


def test_run_with_a_bad_concurrency(tmp_path: Path) -> None:
    out = roadie(tmp_path, "run", "-c", "0", "--redis-url", "redis://127.0.0.1:1")
    assert out.returncode == 1
    assert lines(out.stderr) == ["roadie: concurrency must be at least 1, got 0 "
                                 "(from -c/--concurrency)"]


def test_run_with_a_socket_timeout_shorter_than_a_blocking_fetch(tmp_path: Path) -> None:
    (tmp_path / "roadie.toml").write_text("socket_timeout_s = 2.0\n")
    out = roadie(tmp_path, "run", "--redis-url", "redis://127.0.0.1:1")
    assert out.returncode == 1
    assert lines(out.stderr) == [
        "roadie: socket_timeout_s must be at least 3 for roadie run, got 2 (from "
        "roadie.toml): an idle processor waits 2 s for a job in one Redis command, which a "
        "shorter timeout cuts as an outage (and no dead process's jobs get recovered)"
    ]


def test_run_with_a_bad_config_file(tmp_path: Path) -> None:
    (tmp_path / "roadie.toml").write_text("concurency = 3\n")
    out = roadie(tmp_path, "run", "--redis-url", "redis://127.0.0.1:1")
    assert out.returncode == 1
    assert lines(out.stderr) == ["roadie: unknown setting 'concurency' in roadie.toml"]


def test_check_with_nothing_listening(tmp_path: Path) -> None:
    out = roadie(tmp_path, "check", "--redis-url", "redis://127.0.0.1:1")
    assert out.returncode == 1
    assert "Traceback" not in out.stdout + out.stderr
    failures = [line for line in lines(out.stdout + out.stderr) if line.startswith("FAIL")]
    assert failures == [
        "FAIL: nothing listens at 127.0.0.1:1; start Redis or set REDIS_URL "
        "(or use embedded://.roadie/redis for development)"
    ]


def test_check_with_a_bad_url(tmp_path: Path) -> None:
    out = roadie(tmp_path, "check", "--redis-url", "http://example.invalid/")
    assert out.returncode == 1
    assert "Traceback" not in out.stdout + out.stderr
    failures = [line for line in lines(out.stdout + out.stderr) if line.startswith("FAIL")]
    assert len(failures) == 1
    assert "bad Redis URL" in failures[0]


# --- the same paths in-process (cli.main), so that coverage sees them -----------------


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for key in list(os.environ):
        if key.startswith("ROADIE_") or key in ("REDIS_URL", "REDIS_PROVIDER"):
            monkeypatch.delenv(key)
    logger = logging.getLogger("roadie")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield tmp_path
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_main_run_missing_module(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "-r", "no_such_module_xyz", "-u", "redis://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert lines(err) == [
        "roadie: -r no_such_module_xyz: no module named 'no_such_module_xyz' (run roadie from "
        "your project's folder, or check PYTHONPATH)"
    ]


def test_main_run_bad_queue(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "-q", "a,x", "-u", "redis://127.0.0.1:1"]) == 1
    assert "must be an integer" in capsys.readouterr().err


def test_main_run_broken_module(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (in_tmp / "brokenjobs_inproc.py").write_text("raise RuntimeError('bug in my jobs')\n")
    assert cli.main(["run", "-r", "brokenjobs_inproc.py", "-u", "redis://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert "error while importing your job modules" in err
    assert "RuntimeError: bug in my jobs" in err


def test_require_a_missing_dependency_of_the_module_is_reraised(in_tmp: Path) -> None:
    # The module exists but imports something missing: that is the user's bug, not -r's.
    (in_tmp / "needs_missing_dep.py").write_text("import no_such_dependency_xyz\n")
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        cli.require(["needs_missing_dep"])


def test_require_a_file_path(in_tmp: Path) -> None:
    (in_tmp / "pkgdir").mkdir()
    (in_tmp / "pkgdir" / "jobs_by_path_xyz.py").write_text("LOADED = True\n")
    cli.require([str(Path("pkgdir") / "jobs_by_path_xyz.py")])
    assert sys.modules["jobs_by_path_xyz"].LOADED is True
    del sys.modules["jobs_by_path_xyz"]


def test_main_check_nothing_listening(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--redis-url", "redis://127.0.0.1:1"]) == 1
    out = capsys.readouterr().out
    assert [line for line in lines(out) if line.startswith("FAIL")] == [
        "FAIL: nothing listens at 127.0.0.1:1; start Redis or set REDIS_URL "
        "(or use embedded://.roadie/redis for development)"
    ]


def test_load_config_from_args(in_tmp: Path) -> None:
    args = cli._parser().parse_args(["check", "-u", "redis://h:1/2", "--namespace", "ns"])
    cfg = cli.load_config(args, {"concurrency": 3})
    assert (cfg.redis_url, cfg.namespace, cfg.concurrency) == ("redis://h:1/2", "ns", 3)
    assert cfg.redis_url_configured is True
