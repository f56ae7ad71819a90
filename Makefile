# Every target creates .venv itself: a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo run test tools lint format clean bench docs lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
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

# The bridge against a raw NATS -> HTTP baseline (README "Performance"); ~20 min on 2 cores.
# Smaller or selected runs: make bench BENCH_ARGS="--runs 1 --scale 0.1 --only 1,5"
bench: $(VENV)/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

# README's configuration reference, rendered from bridge/config.py (a test fails when stale)
docs: $(VENV)/.installed
	$(BIN)/python tools/config_reference.py

# deploy/docker/requirements.lock: the image's runtime packages, pinned with hashes
lock: $(VENV)/.installed
	$(BIN)/python tools/lock_requirements.py

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict bridge

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
