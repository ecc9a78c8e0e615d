# Every target creates the virtualenv first, so a fresh clone needs nothing but Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
DATA_DIR ?= .local/data
PROVIDER ?= openai

.PHONY: venv lock lint test test-fast test-e2e-at chromium demo up up-celery down status logs report server bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.txt -r requirements-dev.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

lock: venv
	$(BIN)/uv pip compile --quiet --python-version 3.11 requirements.in -o requirements.txt
	$(BIN)/uv pip compile --quiet --python-version 3.11 requirements-dev.in -o requirements-dev.txt

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHONPATH=.:plugins $(BIN)/lint-imports --no-cache --no-logo

# Two test processes: most of the suite waits on servers and Airflow, so both cores stay busy. The
# tests of one file stay in one process, so a module's running stack is started once.
# The slowest tests are listed at the end, to keep the suite's time in view.
TEST_WORKERS ?= 2
test: venv lint chromium
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

# The browser tests drive Debian's chromium (never a downloaded browser build).
chromium:
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)

test-fast: venv
	$(BIN)/python -m pytest -m "not slow"

# The local-stack end-to-end tests with every process's wall clock at AT (UTC), e.g. `make test-e2e-at AT=23:58`.
AT ?= 23:58
test-e2e-at: venv
	$(BIN)/python tests/e2e/at_clock.py $(AT) -- $(BIN)/python -m pytest -p no:cacheprovider tests/e2e/test_local_stack.py

demo: venv
	PYTHONPATH=.:plugins $(BIN)/python -m include.demo --data-dir $(DATA_DIR)/demo --provider $(PROVIDER)

up: venv
	$(BIN)/python -m include.stack up

up-celery: venv
	$(BIN)/python -m include.stack up --executor celery --postgres --s3

down: venv
	$(BIN)/python -m include.stack down

# The stack's processes and restarts; the tail of each process's log (LINES=40); the last runs and their money.
status: venv
	$(BIN)/python -m include.stack status

LINES ?= 40
logs: venv
	$(BIN)/python -m include.stack logs --lines $(LINES)

report: venv
	PYTHONPATH=.:plugins $(BIN)/python -m include.batch_runs_report

server: venv
	$(BIN)/python -m local_batch_api --data-dir $(DATA_DIR)/server

bench: venv
	for script in benchmarks/bench_*.py; do PYTHONPATH=.:plugins $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
