# Every target creates .venv itself: a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo run test tools lint format clean bench docs lock upgrade-check screenshots

# The lock pins every runtime, test and dev package with hashes (`make lock` moves it);
# pyproject.toml keeps the ranges that people who `pip install` the package get.
LOCK        := requirements/dev.lock
DOCKER_LOCK := deploy/docker/requirements.lock
COMPILE     := $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 \
               --custom-compile-command "make lock" pyproject.toml

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# --no-deps: the lock is the whole closure; --no-build-isolation: setuptools comes from it too
$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: $(VENV)/.installed
	$(BIN)/webhook-bridge demo

run: $(VENV)/.installed
	$(BIN)/webhook-bridge run --embedded-nats

test: $(VENV)/.installed tools
	$(BIN)/pytest -q

# promtool and prometheus for the tests of deploy/prometheus, unpacked from Debian's `prometheus`
# package into the venv: no root install, no service started. Without them those tests skip.
tools: | $(BIN)/python
	@[ -x $(BIN)/promtool ] || command -v promtool >/dev/null || \
	( tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && \
	  { apt-get download prometheus || { apt-get update -qq && apt-get download prometheus; }; } \
	    >/dev/null 2>&1 && \
	  dpkg-deb -x prometheus_*.deb . && cp usr/bin/promtool usr/bin/prometheus $(abspath $(BIN))/ \
	) || echo "tools: apt-get download prometheus failed; the promtool tests will skip"

# The bridge against a raw NATS -> HTTP baseline (docs/performance.md); about 9 min on 2 cores.
# Smaller or selected runs: make bench BENCH_ARGS="--runs 1 --scale 0.1 --only 1,5"
bench: $(VENV)/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

# The configuration reference of docs/contract.md, rendered from bridge/config/settings.py
# (a test fails when stale)
docs: $(VENV)/.installed
	$(BIN)/python tools/config_reference.py

# The console's screenshots of docs/console (README): every page at laptop and phone widths,
# taken by Debian's chromium from a bridge started for the purpose
screenshots: $(VENV)/.installed
	PYTHONPATH=tests $(BIN)/python -m harness.console docs/console

# Move the locks on purpose: the newest versions pyproject.toml allows, for every platform.
# The image's lock takes the same versions as the dev lock (-c), runtime packages only.
lock: $(VENV)/.installed
	$(COMPILE) requirements/build.in --extra dev --upgrade -o $(LOCK)
	$(COMPILE) --extra speed -c $(LOCK) -o $(DOCKER_LOCK)
	@echo "lock: wrote $(LOCK) and $(DOCKER_LOCK); 'make test' installs from them"

# Would the newest allowed versions pass? A scratch venv, unlocked installs, the whole suite.
# Nothing here touches .venv or the lock: moving the lock stays a decision (`make lock`).
UPGRADE_VENV ?= $(or $(TMPDIR),/tmp)/webhook-bridge-upgrade-check
upgrade-check:
	rm -rf $(UPGRADE_VENV) && $(PYTHON) -m venv $(UPGRADE_VENV)
	$(UPGRADE_VENV)/bin/pip install --quiet --upgrade pip setuptools wheel
	$(UPGRADE_VENV)/bin/pip install --quiet --upgrade -e '.[dev]'
	@echo "upgrade-check: versions that differ from $(LOCK) (locked -> newest allowed):"
	@$(UPGRADE_VENV)/bin/python tools/lock_drift.py $(LOCK)
	$(MAKE) --no-print-directory tools BIN=$(UPGRADE_VENV)/bin
	$(UPGRADE_VENV)/bin/pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict bridge

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
