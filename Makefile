# Two commands for a fresh machine: `make demo` and `make test`. Both set everything up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench system-deps venv clean

$(STAMP): requirements.txt constraints.txt pyproject.toml
	command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# PostgreSQL 15 server binaries for the throwaway test cluster (tests start and stop it themselves).
system-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing PostgreSQL server binaries"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

demo: venv
	bash scripts/demo.sh

test: venv system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv system-deps
	$(BIN)/python -m bench.sync_bench $(BENCH_ARGS)  # e.g. make bench BENCH_ARGS="--members 100000 --departments 10000 --strategy export --resync"

clean:
	rm -rf var .pytest_cache
