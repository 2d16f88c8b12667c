# Two commands for a fresh machine: `make demo` and `make test`. Both set everything up.
# The rest is for contributors (CONTRIBUTING.md): test-unit, lint, format, bench.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
SIM := $(VENV)/.installed-simulator
# dbt in a virtualenv of its own (requirements-dbt.txt: its pins clash with Airflow's), for include/dbt.
DBT_VENV := .venv-dbt
DBT_INSTALLED := $(DBT_VENV)/.installed
# Its artifacts (compiled SQL, run results, logs) go to var/dbt/, out of the project folder.
DBT = DBT_PROJECT_DIR=include/dbt DBT_PROFILES_DIR=include/dbt \
	DBT_TARGET_PATH=$(CURDIR)/var/dbt/$(1)/target DBT_LOG_PATH=$(CURDIR)/var/dbt/$(1)/logs $(DBT_VENV)/bin/dbt
DBT_ARGS ?= build
# pytest-xdist workers; `make test PYTEST_WORKERS=0` runs in one process. worksteal: an idle worker
# takes tests queued for a busy one, so the long DAG tests do not end up in one worker's queue.
PYTEST_WORKERS ?= auto
PYTEST := $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist worksteal
# What needs no PostgreSQL server, no Airflow metadata database and starts no program (markers: pyproject.toml).
UNIT := not postgres and not airflow and not integration and not process

.PHONY: demo demo-dbt test test-unit lint format bench system-deps venv dbt-venv dbt clean

# The runtime set (requirements.txt) and the package itself, as `make demo` needs them.
$(RUNTIME): requirements.txt constraints.txt pyproject.toml setup.py
	command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	$(PIP) --no-deps -e .
	touch $@

# The WeCom simulator, a development tool kept out of the runtime wheel (devtools/wecom_simulator):
# on the venv's path, for `python -m wecom_simulator`, the demo, `make airflow` and the tests.
$(SIM): $(RUNTIME)
	echo "$(CURDIR)/devtools" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/wecom-devtools.pth"
	touch $@

# Tests and tooling on top (requirements-dev.txt).
$(DEV): $(SIM) requirements-dev.txt
	$(PIP) -r requirements-dev.txt
	touch $@

venv: $(DEV)

$(DBT_INSTALLED): requirements-dbt.txt constraints-dbt.txt
	command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(DBT_VENV)/bin/python || $(PYTHON) -m venv $(DBT_VENV)
	$(DBT_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dbt.txt
	touch $@

dbt-venv: $(DBT_INSTALLED)

# dbt by hand on a PostgreSQL the sync DAG loaded, named by libpq's variables (include/dbt/profiles.yml):
# PGHOST=... PGPORT=... PGUSER=... PGPASSWORD=... PGDATABASE=... make dbt DBT_ARGS="source freshness"
dbt: $(DBT_INSTALLED)
	$(call DBT,run) $(DBT_ARGS)

# Debian packages the tests start themselves: PostgreSQL 15 server binaries (throwaway clusters),
# redis-server (the CeleryExecutor run) and chromium (the deployment suite's browser, driven by Playwright).
system-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null \
		&& command -v chromium >/dev/null || { \
		echo "installing postgresql, redis-server and chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server chromium >/dev/null; }

demo: $(SIM)
	bash scripts/demo.sh

# The dbt project on a throwaway PostgreSQL one sync loaded; kept until Ctrl-C for `make dbt` in another shell.
demo-dbt: $(SIM) $(DBT_INSTALLED) system-deps
	$(BIN)/python scripts/demo_dbt.py $(DEMO_DBT_ARGS)

# A real Airflow on this machine, UI on http://127.0.0.1:8080, until Ctrl-C (scripts/airflow_local.py):
# `make airflow` (SQLite: single-user, see docs/running-in-airflow.md), `make airflow DB=postgres` (throwaway
# PostgreSQL 15: backfills, several runs at once), `make airflow EXECUTOR=celery` (Redis, PostgreSQL),
# `make airflow DAGS=path/to/your/dags` (your own DAGs beside the package's, e.g. one scheduled on the directory's assets).
.PHONY: airflow
airflow: $(SIM) $(if $(filter postgres,$(DB))$(filter celery,$(EXECUTOR)),system-deps)
	$(BIN)/python scripts/airflow_local.py $(if $(filter postgres,$(DB)),--postgres) $(if $(EXECUTOR),--executor $(EXECUTOR)) $(if $(DAGS),--dags $(DAGS))

# Lint, then the whole suite in parallel: unit tests, PostgreSQL, Airflow API and DAG runs; the 20 slowest listed
# (CONTRIBUTING.md: keeping the suite fast).
test: lint system-deps
	$(PYTEST) --durations=20

# The fast layer (target < 60 s; see CONTRIBUTING.md): no PostgreSQL server, no Airflow metadata database or DAG runs, no program started.
test-unit: $(DEV)
	$(PYTEST) -m "$(UNIT)"

# Style, dead code (vulture, twice: the runtime code alone, [tool.vulture] and .ci/vulture_whitelist.py, then
# the code only contributors run, VULTURE_DEV, with everything as its callers), copied blocks of 6+ lines
# ([tool.pylint]); the dbt project's SQL (sqlfluff) and its YAML, Jinja and references (dbt parse).
VULTURE_DEV := plugins dags devtools tests bench scripts .ci/vulture_whitelist.py .ci/vulture_whitelist_dev.py
lint: $(DEV) $(DBT_INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/vulture
	$(BIN)/vulture $(VULTURE_DEV)
	$(BIN)/pylint plugins dags
	$(DBT_VENV)/bin/sqlfluff lint include/dbt
	$(call DBT,lint) --quiet --warn-error parse

format: $(DEV)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(DEV) system-deps
	$(BIN)/python -m bench.sync_bench $(BENCH_ARGS)  # e.g. make bench BENCH_ARGS="--members 100000 --departments 10000 --strategy export --resync"

clean:
	rm -rf var .pytest_cache
