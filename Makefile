# Sluice — every install step lives here, so a fresh clone needs only Python 3.11+, Node.js/npm
# and make. Targets are idempotent: they reinstall only when the lock files change.
#
# Locks (requirements/, every pin with the hashes of all its files; `make lock` writes them):
#   pip.lock      pip itself, installed first;
#   runtime.lock  the package with its aws and redis extras: what an image or a production
#                 install takes (pip install --require-hashes -r requirements/runtime.lock);
#   dev.lock      only what development adds (tests and tools), installed on top of runtime.lock.

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed
TOOLS_STAMP := tools/node_modules/.installed
LOCKS := requirements/pip.lock requirements/runtime.lock requirements/dev.lock
PIP := $(BIN)/python -m pip
.DEFAULT_GOAL := help

.PHONY: vendor help install lock tools run test test-unit scale chaos lint format typecheck coverage contracts clean bench security

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(VENV_STAMP): $(LOCKS) pyproject.toml $(wildcard clients/python/pyproject.toml)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (found " + sys.version.split()[0] + ")")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r requirements/pip.lock
	$(PIP) install --quiet --require-hashes -r requirements/runtime.lock -r requirements/dev.lock
	$(PIP) install --quiet --no-deps -e .
	@# The Python SDK (`sluice-client`, clients/python), editable beside the engine once it exists.
	@# Its dependencies belong in pyproject.toml's dev extra, so requirements/dev.lock pins them.
	if [ -d clients/python ]; then $(PIP) install --quiet --no-deps -e clients/python; fi
	touch $@

$(TOOLS_STAMP): tools/package.json tools/package-lock.json clients/typescript/package.json clients/typescript/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed (Node.js 20+): see README.md"; exit 1; }
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	@# The TypeScript client's pinned generator and compiler (its up-to-date check is a test).
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV_STAMP) tools ## Create .venv and install Python dependencies and tools

# uv resolves for every platform (--universal) and Python 3.11+, keeps the pins already in the
# locks unless pyproject.toml needs them to move, and hashes every file of each pin. Everything is
# resolved together first (LOCK_ALL), so the runtime and dev locks agree on what they share.
# LOCK_FLAGS=--upgrade moves every pin to its latest release, --upgrade-package NAME one.
LOCK_FLAGS ?=
LOCK_ALL := $(VENV)/all-extras.lock
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(LOCK_FLAGS)
lock: $(VENV_STAMP) ## Re-pin requirements/*.lock from pyproject.toml (LOCK_FLAGS=--upgrade: latest)
	echo pip | $(UV_COMPILE) - -o requirements/pip.lock
	cat requirements/runtime.lock requirements/dev.lock > $(LOCK_ALL)
	$(UV_COMPILE) pyproject.toml --all-extras -c requirements/pip.lock -o $(LOCK_ALL)
	$(UV_COMPILE) pyproject.toml --extra aws --extra redis -c $(LOCK_ALL) -o requirements/runtime.lock
	@# The dev lock leaves out what the runtime lock pins (at the versions it pins).
	$(UV_COMPILE) pyproject.toml --extra dev -c $(LOCK_ALL) \
		$$(sed -n 's/^\([A-Za-z0-9._-]*\)==.*/--no-emit-package \1/p' requirements/runtime.lock) \
		-o requirements/dev.lock
	@# The combined resolution is scaffolding: drop it, and its mention in the "via" notes.
	sed -i '\|^    #   -c $(LOCK_ALL)$$|d' requirements/runtime.lock requirements/dev.lock
	rm -f $(LOCK_ALL)

tools: $(TOOLS_STAMP) ## Install the pinned Anvil, Hardhat and solc into tools/node_modules

run: install ## Start Sluice locally: Anvil, API and workers (Ctrl-C stops)
	$(BIN)/sluice dev

# The end-to-end suite runs on each node of TEST_NODES (tests/e2e/conftest.py) in the SQLite pass;
# the PostgreSQL pass, which checks the database and not the node, runs it on Anvil only, with
# 200 withdrawals in the batch payout test (500 on SQLite). The multi-process test pays 100
# withdrawals here (1,000 in `make scale`); the 30 s network outage and the property test's deep
# search run in `make chaos`.
TEST_NODES ?= anvil,hardhat
test: install ## Run every test on SQLite (end-to-end on Anvil and Hardhat), then those that use a database on PostgreSQL
	SLUICE_TEST_DATABASE=sqlite SLUICE_TEST_NODES=$(TEST_NODES) $(BIN)/pytest -q --ignore=tests/security
	SLUICE_TEST_DATABASE=postgresql SLUICE_TEST_NODES=anvil SLUICE_BATCH_E2E_WITHDRAWALS=200 \
		$(BIN)/pytest -q -m database tests/integration tests/e2e

test-unit: $(VENV_STAMP) ## Run the unit tests only (no I/O)
	$(BIN)/pytest -q tests/unit

scale: install ## 1,000 withdrawals through 2 APIs and 3 workers (PostgreSQL; Redis Streams, SQS)
	SLUICE_SCALE_WITHDRAWALS=1000 $(BIN)/pytest -q tests/e2e/test_multi_process.py

chaos: install ## Fault-injection suite: 300 withdrawals per scenario, batch payouts too, a frozen node, the property test's deep search (PostgreSQL, Redis; minutes)
	SLUICE_CHAOS=1 $(BIN)/pytest -q -s tests/chaos \
		tests/e2e/test_multichain.py::test_a_frozen_chain_never_stops_the_others_and_catches_up
	SLUICE_TEST_DATABASE=postgresql SLUICE_PROPERTY_EXAMPLES=500 \
		$(BIN)/pytest -q tests/integration/test_engine_properties.py

# pip-audit asks PyPI's JSON API per pinned version; where OSV is reachable, pass
# PIP_AUDIT_FLAGS="--vulnerability-service osv --strict". docs/security.md, "Automated checks".
PIP_AUDIT_FLAGS ?= --vulnerability-service pypi
security: install ## bandit over src/, pip-audit over requirements/*.lock, Schemathesis against the API
	$(BIN)/bandit -c pyproject.toml -r src -q
	$(BIN)/pip-audit $(addprefix -r ,$(LOCKS)) --no-deps --disable-pip --progress-spinner off $(PIP_AUDIT_FLAGS)
	$(BIN)/python scripts/audit_lock.py $(LOCKS)
	$(BIN)/pytest -q tests/security

lint: $(VENV_STAMP) ## ruff (lint and format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV_STAMP) ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(VENV_STAMP) ## mypy --strict
	$(BIN)/mypy

coverage: install ## Run the tests with a coverage report
	$(BIN)/pytest -q --cov --cov-report=term-missing:skip-covered

bench: install ## Benchmark gas per withdrawal, intake, latency and the pipeline (BENCH_ARGS=--quick: a smoke run)
	@command -v wrk >/dev/null && command -v hey >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq wrk hey)
	$(BIN)/python bench/gas.py --strict
	$(BIN)/python bench/run.py $(BENCH_ARGS)

contracts: tools ## Recompile contracts/ with the pinned solc (rewrites the committed artifacts)
	node contracts/build.mjs

vendor: tools ## Copy Swagger UI from its pinned npm package into src/sluice/api/static (committed)
	$(BIN)/python scripts/vendor_assets.py

clean: ## Remove the virtualenv, tools, caches and local dev data
	rm -rf $(VENV) tools/node_modules clients/typescript/node_modules clients/typescript/dist .sluice .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
