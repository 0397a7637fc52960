# Inspect: `make run` starts the app, `make test` runs every test. Both set up what they need first,
# into this checkout only (.venv, .tools), and skip what is already installed.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
TOOLS       := .tools
BUN_VERSION := 1.4.4
NPM_REGISTRY ?= https://registry.npmjs.org/

export PATH := $(CURDIR)/$(TOOLS)/node_modules/.bin:$(PATH)
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := false
export REFLEX_DIR := $(CURDIR)/$(TOOLS)/reflex
export BUN_INSTALL_CACHE_DIR := $(CURDIR)/$(TOOLS)/bun-cache
export NPM_CONFIG_REGISTRY := $(NPM_REGISTRY)

.PHONY: run test lint format deps clean

run: $(VENV)/.runtime $(TOOLS)/.stamp
	$(PY) -m inspect_app.serve

test: $(VENV)/.dev $(TOOLS)/.stamp lint
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

deps: $(VENV)/.dev $(TOOLS)/.stamp

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# bun (Reflex's frontend toolchain) from the npm registry; its postinstall links the platform binary.
$(TOOLS)/.stamp: Makefile
	mkdir -p $(TOOLS)
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error bun@$(BUN_VERSION)
	$(TOOLS)/node_modules/.bin/bun --version
	touch $@

clean:
	rm -rf $(VENV) $(TOOLS) .web .states
