# Every target CI calls lives here, so a local check equals CI. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp changes whenever a pinned input changes, so `make setup` reinstalls exactly then.
STAMP  := $(VENV)/.installed-$(shell cat requirements/lock.txt pyproject.toml functions/pyproject.toml infra/pyproject.toml package-lock.json 2>/dev/null | sha1sum | cut -c1-12)
# The reference Tilebox SDK (tilebox-workflows 0.66.0) for tests/tilebox/, in a venv of its own: it pulls
# grpcio, pandas, numpy and opentelemetry, which stay out of .venv. Rebuilt when requirements/tilebox.txt changes.
TILEBOX_VENV  := build/tilebox-venv
TILEBOX_STAMP := $(TILEBOX_VENV)/.installed-$(shell cat requirements/tilebox.txt 2>/dev/null | sha1sum | cut -c1-12)

.PHONY: help setup browser tilebox demo test test-fast test-infra lint format bench bench-bundle synth deploy lock clean screenshots

# jsii warns at length on every run under Node 20; the CDK still works there.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

help:
	@echo "make demo   - install everything, run the example workflow on the local stack (moto)"
	@echo "make test   - install everything, run lint and the whole test suite (what CI runs)"
	@echo "make tilebox - build/tilebox-venv: the reference Tilebox SDK for tests/tilebox (hashed pins: requirements/tilebox.txt, from tools/lock_tilebox.py)"
	@echo "make bench  - run the benchmarks (print tables, write bench/results.json, critical-path-, selection-, progress-, tilebox-results.json)"
	@echo "make synth  - synthesize the CDK app offline (runs cdk-nag); make deploy to deploy it"
	@echo "make lint   - ruff (lint and format check) and mypy; make format formats"
	@echo "make lock   - re-resolve requirements/lock.txt from the top-level pins in requirements/*.txt"

setup: $(STAMP)

# The pinned packages, then this repository's three distributions, editable: taskfleet (sdk/, runner/),
# taskfleet-functions (functions/: the orchestrator and the local stack), taskfleet-infra (infra/: the CDK app).
$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		-e . -e functions -e infra
	if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; fi
	rm -f $(VENV)/.installed-* && touch $@

demo: setup
	$(BIN)/taskfleet demo

test: setup browser tilebox lint
	$(BIN)/python -m pytest

tilebox: $(TILEBOX_STAMP)

# From scratch each time (a package dropped from the pins must not linger); nothing installed without its hash
# but pip itself (as in $(STAMP)) and the build backend pip fetches to build the one sdist (promise).
$(TILEBOX_STAMP):
	rm -rf $(TILEBOX_VENV) && $(PYTHON) -m venv $(TILEBOX_VENV)
	$(TILEBOX_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(TILEBOX_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r requirements/tilebox.txt
	$(TILEBOX_VENV)/bin/python -m pip check --disable-pip-version-check
	$(TILEBOX_VENV)/bin/python -c "import tilebox.workflows.client, pyqwest, connectrpc"
	touch $@

# The web console's tests drive Debian's chromium with Playwright (which cannot download a browser here):
# installed with apt when missing (as root, as CI runs), with a font so that pages render text.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }

# The README's console and diagram pictures, taken by the console's browser tests.
screenshots: setup browser
	TASKFLEET_SCREENSHOTS=docs/images $(BIN)/python -m pytest tests/e2e/test_console.py -q

test-fast: setup
	$(BIN)/python -m pytest tests/unit -q

test-infra: setup
	$(BIN)/python -m pytest tests/infra -q

synth: setup
	npx cdk synth --no-notices -q

deploy: setup
	npx cdk deploy

bench-bundle: setup
	$(BIN)/python -m bench.bundle_size

LINTED := sdk runner functions infra tests bench tools

lint: setup
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

bench: setup tilebox
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.critical_path
	$(BIN)/python -m bench.selection
	$(BIN)/python -m bench.progress
	$(BIN)/python -m bench.tilebox

# The lock, then the hashed files what is deployed installs with --require-hashes (the runner image's
# runner/requirements.txt, the Lambda bundle's infra/lambda-requirements*.txt): versions from the lock,
# hashes of PyPI's wheels. `python tools/hash_requirements.py` alone redoes the hashed files only.
lock:
	rm -rf build/lockenv && $(PYTHON) -m venv build/lockenv
	build/lockenv/bin/python -m pip install --quiet --disable-pip-version-check pip==25.3
	build/lockenv/bin/python -m pip install --quiet --disable-pip-version-check $(foreach f,$(wildcard requirements/[a-k]*.txt),-r $(f))
	(echo "# Generated by 'make lock' from requirements/{dev,infra,bench}.txt: every package, exactly pinned."; \
	 build/lockenv/bin/python -m pip freeze --all --exclude-editable | grep -v '^taskfleet\|^pip==') > requirements/lock.txt
	build/lockenv/bin/python tools/hash_requirements.py
	rm -rf build/lockenv

clean:
	rm -rf $(VENV) build cdk.out node_modules .pytest_cache .mypy_cache .ruff_cache
