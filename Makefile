# The two commands of the README: `make demo` and `make test`. Both set everything up from a
# clean clone: a pinned .venv (uv.lock, installed by a pinned uv), the demo data, Airflow's home.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin

DEMO_DB := .demo/marketplace.db
DEMO_LEDGER := .demo/dac7-ledger.sqlite3
DEMO_SELLERS ?= 2000
DEMO_SEED ?= 7
DEMO_YEAR ?= 2025
DEMO_LOGICAL_DATE ?= 2026-01-15
DEMO_OUT ?= out/demo

export UV_PYTHON_DOWNLOADS := never
export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: venv browser java demo test test-fast fuzz bench lint docs examples clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Creates or updates .venv exactly as uv.lock pins it (never re-resolves).
venv: $(UV)
	$(UV) sync --frozen --extra airflow --extra dev --extra fast --extra spark --extra pdf --python $(PYTHON) --quiet \
		--reinstall-package dac7-reporting

demo: venv
	rm -f $(DEMO_DB) $(DEMO_LEDGER)
	$(BIN)/dac7 demo-data --db sqlite:///$(DEMO_DB) --sellers $(DEMO_SELLERS) --seed $(DEMO_SEED) --year $(DEMO_YEAR)
	DAC7_SOURCE_URL=sqlite:///$(CURDIR)/$(DEMO_DB) DAC7_OUT_DIR=$(CURDIR)/$(DEMO_OUT) \
	DAC7_CONFIG=$(CURDIR)/dac7.toml DAC7_STAGING_DIR=$(CURDIR)/.dac7/staging \
	DAC7_LEDGER_URL=sqlite:///$(CURDIR)/$(DEMO_LEDGER) \
	PATH=$(CURDIR)/$(BIN):$$PATH sh scripts/demo_airflow.sh $(DEMO_LOGICAL_DATE)
	@echo
	@$(BIN)/dac7 summary --out $(DEMO_OUT)/$(DEMO_YEAR)

# Debian packages for the tests, installed only when missing: $(call DEBIAN_INSTALL,package).
# `apt-get update` runs only when the install fails without it (a fresh image has no package
# lists); sudo only when not root.
DEBIAN_INSTALL = echo "installing Debian's $(1) package (apt-get)"; \
	sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	install="env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(1)"; \
	$$sudo $$install || { $$sudo apt-get update -q && $$sudo $$install; }

# Headless Chromium for the tests that render HTML (tests/browser.py).
CHROMIUM := /usr/bin/chromium

browser: $(CHROMIUM)

$(CHROMIUM):
	@$(call DEBIAN_INSTALL,chromium)

# Java 17 for Apache Spark in local mode (the spark extra, tests/integration/test_spark_source.py):
# Debian's headless runtime, when no java is on the PATH.
java:
	@command -v java >/dev/null || { $(call DEBIAN_INSTALL,openjdk-17-jre-headless); }

# A local Airflow (standalone) on 127.0.0.1 with the DAGs, the DAC7 view and the demo data
# (made first when missing): prints the URL and the logins; Ctrl-C stops it. `exec`: make's child
# is the script itself, which stops Airflow on Ctrl-C before make returns.
AIRFLOW_PORT ?= 8080

.PHONY: airflow
airflow: venv
	@[ -f $(DEMO_OUT)/$(DEMO_YEAR)/manifest.json ] || $(MAKE) demo
	DAC7_SOURCE_URL=sqlite:///$(CURDIR)/$(DEMO_DB) DAC7_OUT_DIR=$(CURDIR)/$(DEMO_OUT) \
	DAC7_CONFIG=$(CURDIR)/dac7.toml DAC7_STAGING_DIR=$(CURDIR)/.dac7/staging \
	DAC7_LEDGER_URL=sqlite:///$(CURDIR)/$(DEMO_LEDGER) AIRFLOW_PORT=$(AIRFLOW_PORT) \
	PATH=$(CURDIR)/$(BIN):$$PATH exec sh scripts/airflow_local.sh

# Every test, in two pytest runs that must both pass (the second runs only when the first passed;
# its summary line is the last line of the output):
# 1. everything but tests/dags on every core (pytest-xdist). These tests keep to themselves: files
#    under their own tmp_path, PostgreSQL and MariaDB databases and a Redis key prefix of their own
#    names (tests/conftest.py), servers on free ports, subprocesses on their own files.
#    --dist loadfile keeps a test file in one process, so that a module's fixtures (the golden
#    ledger's twenty runs, a Spark session, a demo marketplace) are built once.
# 2. tests/dags in one process: real Airflow stacks (`airflow standalone` whose scheduler and
#    triggerer serve their logs on Airflow's fixed ports, the Celery cluster, api-servers) and
#    dag.test() runs, each timed for a machine that runs nothing else of the suite.
# Measured on the 2-core machine while other work kept it busy (load 4 to 11): the first run 21.5 to
# 25 minutes (its tests' times add up to 49 minutes), tests/dags 14.5 minutes (21.5 before: the
# mark-as-success test of test_four_eyes.py waited 5.5 minutes on publish's retry delays). Before,
# one serial run of `make test` in CI: 50 minutes. A clean clone, idle machine, 2,806 tests: about 21
# minutes (12 + 8.3; docs/development/tests.md). 2026-12-07, a clean clone on a slower 2-core AMD
# EPYC, 3,429 + 344 tests: the first run 36.8 minutes. Each run lists its slowest tests
# (--durations), where trimming starts.
test: venv browser java
	$(BIN)/python -m pytest --ignore=tests/dags -n auto --dist loadfile --durations=30
	$(BIN)/python -m pytest tests/dags --durations=15

# The quick loop while working: the unit and golden tests but those marked slow (real Airflow runs,
# the Celery cluster, larger data), on every core (pytest-xdist); `make test` runs them all.
# --dist loadfile keeps the tests of a file in one process, so that a module's fixtures (the golden
# ledger's twenty runs) are built once: 4 minutes instead of 6.5 with the default distribution and
# 8.5 serially, on 2 busy cores.
test-fast: venv
	$(BIN)/python -m pytest tests/unit tests/golden -m "not slow" -n auto --dist loadfile -x -q

# The fuzzing of the configuration loader, the status importer and the renderer, longer than in
# `make test` (60 examples per test there): FUZZ_EXAMPLES per test.
FUZZ_EXAMPLES ?= 5000

fuzz: venv
	DAC7_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/properties/test_fuzz.py -q -p no:randomly

# The benchmark (dac7_demo/bench.py): a generated marketplace of BENCH_SELLERS sellers (30,000: about
# 900,000 transactions), every stage timed in a process of its own, the table printed and written as
# JSON under .dac7/bench/. BENCH_ARGS adds options, e.g. BENCH_ARGS=--against-dac7 (the side-by-side).
BENCH_SELLERS ?= 30000
BENCH_ARGS ?=

bench: venv
	$(BIN)/dac7 bench --sellers $(BENCH_SELLERS) $(BENCH_ARGS)

# ruff (style and format), mypy (strict on the domain: pyproject.toml) and import-linter (the layers of
# the package: pyproject.toml). .pre-commit-config.yaml runs the same before a commit.
LINT_PATHS := reporting dac7_demo dags plugins tests benchmarks scripts examples
MYPY_PATHS := reporting dac7_demo

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy $(MYPY_PATHS)
	$(BIN)/lint-imports --no-cache


# The documentation site (mkdocs.yml, docs/) into site/: --strict fails on any warning (a broken
# link or anchor, a page missing from the navigation). NO_MKDOCS_2_WARNING: the theme's banner.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# examples/: the small source database and the XML of every authority profile, made again
# (fixed seed, run id and timestamp: the same bytes; tests/unit/test_examples.py compares).
examples: venv
	$(BIN)/python examples/make_examples.py

clean:
	rm -rf .airflow .demo .dac7 out
