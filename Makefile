# Developer and CI entry points. Everything runs inside $(VENV), created on demand:
# a fresh clone needs only Python 3.11+ (`make test` brings its own redis-server).

PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=
# Touched after a successful install; pyproject.toml changes make it stale.
STAMP := $(VENV)/.roadie-installed

.PHONY: venv demo test lint clean soak load fuzz bench ablation

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $@

# The short tour (push, schedule, fail and retry), then the signup story
# (a web app handing mail, SMS, reminders and a periodic API call to roadie).
demo: venv
	$(VENV)/bin/python examples/demo.py
	$(VENV)/bin/python examples/signup/run_story.py

test: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The fault suite at length (tests/faults with ROADIE_SOAK=1: 10 times the jobs, longer
# faults; about 6 minutes on 2 cores), then every scenario's account as a table.
SOAK_RESULTS ?= build/soak-results.jsonl
soak: venv
	mkdir -p $(dir $(SOAK_RESULTS)) && rm -f $(SOAK_RESULTS)
	status=0; ROADIE_SOAK=1 ROADIE_FAULTS_RESULTS=$(abspath $(SOAK_RESULTS)) \
	  $(VENV)/bin/python -m pytest tests/faults -s -o timeout=900 $(PYTEST_ARGS) || status=$$?; \
	$(VENV)/bin/python tests/faults/fault_support.py table $(SOAK_RESULTS); exit $$status

# roadie against real Sidekiq and Python peers, with issue 7's targets (see
# docs/performance.md). Peers get their own venvs under benchmarks/.venvs on first use.
# E.g. make bench BENCH_ARGS="--quick" or BENCH_ARGS="--headline --write".
BENCH_ARGS ?=
bench: venv
	$(VENV)/bin/python benchmarks/bench.py $(BENCH_ARGS)

# What each speed mechanism still gains: its workloads with it on and off (about
# 10 minutes). E.g. make ablation ABLATION_ARGS="--mechanisms steal,park".
ABLATION_ARGS ?=
ablation: venv
	$(VENV)/bin/python benchmarks/ablation.py $(ABLATION_ARGS)

# One million jobs through one roadie process (about 5 to 10 minutes on 2 cores):
# push rate, Redis memory per job, deep vs shallow fetch, RSS, exactly-once check.
# LOAD_ARGS=--write updates docs/load.md; LOAD_ARGS="--jobs 20000" is a quick run.
LOAD_ARGS ?=
load: venv
	$(VENV)/bin/python benchmarks/load.py $(LOAD_ARGS)

# The property tests of tests/fuzz with many more examples (a few minutes), then,
# if atheris is installed (pip install -e '.[fuzz]'), coverage-guided fuzzing of the
# queue-entry path for FUZZ_SECONDS.
FUZZ_SECONDS ?= 120
fuzz: venv
	HYPOTHESIS_PROFILE=fuzz $(VENV)/bin/python -m pytest tests/fuzz -o timeout=1200 $(PYTEST_ARGS)
	if $(VENV)/bin/python -c 'import atheris' 2>/dev/null; then \
	  $(VENV)/bin/python tests/fuzz/atheris_payload.py -max_total_time=$(FUZZ_SECONDS); \
	else echo "atheris not installed: skipped the coverage-guided run"; fi

lint: venv
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports

# Leaves $(VENV) and .roadie/ alone: the latter holds the embedded server's data.
clean:
	rm -rf build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
