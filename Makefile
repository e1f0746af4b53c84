# Two commands on a fresh machine: `make demo` and `make test`. Each does its own set-up, idempotently.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_ROWS ?= 200000
DEMO_REQUESTS ?= 8000
PYTEST_ARGS ?=
BENCH_ROWS ?= 200000 1000000
BENCH_REPEAT ?= 2
WEEKLY_ROWS ?= 1000000 5000000 10000000

.PHONY: help setup system-deps test test-fast lint docs demo airflow bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: system-deps $(STAMP)  ## create .venv, install the project, build Spark's class archive (nothing to do the second time)
	$(BIN)/retrain class-archive

# Reinstalls only when the package's requirements change.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]}: set PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,docs,pipeline,serving,airflow]'
	touch $(STAMP)

system-deps:  ## check Java 17, PostgreSQL server binaries, the JDBC driver and Chromium; install them with apt as root
	@bash scripts/system-deps.sh

test: lint  ## ruff, then pytest (real PostgreSQL, Spark, Airflow, HTTP servers, browser); the SQL unit tests are its cases too
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: lint  ## ruff, then the tests that need no PostgreSQL, Spark (JVM), Airflow or browser (about 30 s)
	$(BIN)/pytest -m "not postgres and not spark and not airflow and not browser" $(PYTEST_ARGS)

lint: setup  ## ruff's checks, and its formatter's (the code is as `ruff format` writes it)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# NO_MKDOCS_2_WARNING: Material for MkDocs prints a notice about its successor on every build; it is not a warning
# about these pages, which --strict turns into failures.
docs: setup  ## the documentation site in site/ (mkdocs build --strict: a broken link or any warning fails it)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

demo: setup  ## seed the embedded PostgreSQL, start the backend, run the DAG for two Sundays with a week of traffic between
	$(BIN)/retrain demo run --rows $(DEMO_ROWS) --requests $(DEMO_REQUESTS)

airflow: setup  ## a local Airflow (API server, scheduler, DAG processor, triggerer) on AIRFLOW_PORT (8080) and the next two ports
	@bash scripts/airflow.sh

bench: setup  ## the pipeline vs the COPY floor, pandas, DuckDB, naive Spark; the weekly run (WEEKLY_ROWS, 1M 5M 10M)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.run --rows $(BENCH_ROWS) --repeat $(BENCH_REPEAT) --weekly-rows $(WEEKLY_ROWS)

clean:  ## stop the embedded PostgreSQL and remove local data (keeps .venv)
	-$(BIN)/retrain db stop
	rm -rf .local data model_store spark-warehouse
