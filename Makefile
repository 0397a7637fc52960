# Inspect: `make run` starts the app, `make test` runs every test. Both set up what they need first,
# into this checkout only (.venv, .tools), and skip what is already installed.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
TOOLS       := .tools
BUN_VERSION := 1.4.4
OPENCODE_VERSION := 1.18.33
# xterm.js: the browser terminal (the app serves it from .tools/xterm)
XTERM_VERSION := 6.0.0
XTERM_FIT_VERSION := 0.11.0
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

test: $(VENV)/.dev $(VENV)/bin/inspect-cli $(TOOLS)/.stamp lint
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

deps: $(VENV)/.dev $(VENV)/bin/inspect-cli $(TOOLS)/.stamp

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# The terminal client (inspect_app/cli), as a command of this checkout's own: not named `inspect`,
# which other tools use.
$(VENV)/bin/inspect-cli: Makefile | $(VENV)/bin/python
	printf '#!/bin/sh\nPYTHONPATH="%s$${PYTHONPATH:+:$$PYTHONPATH}" exec "%s" -m inspect_app.cli "$$@"\n' \
		"$(CURDIR)" "$(CURDIR)/$(PY)" > $@
	chmod 755 $@

# From the npm registry (postinstall scripts link the platform binaries): bun for Reflex's frontend,
# OpenCode for the sandboxes, xterm.js for the browser terminal, and OpenCode's plugin package
# prepared once so that sandboxes never try to npm-install it at start (which stalls where the
# registry is unreachable), with OpenCode's model catalogue beside it (sandboxes load only their
# providers' part: 0.7 s less per boot).
$(TOOLS)/.stamp: Makefile
	mkdir -p $(TOOLS)/opencode-plugin
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error bun@$(BUN_VERSION) opencode-ai@$(OPENCODE_VERSION)
	npm install --prefix $(TOOLS)/opencode-plugin --no-audit --no-fund --loglevel=error @opencode-ai/plugin@$(OPENCODE_VERSION)
	npm install --prefix $(TOOLS)/xterm --no-audit --no-fund --loglevel=error @xterm/xterm@$(XTERM_VERSION) @xterm/addon-fit@$(XTERM_FIT_VERSION)
	$(TOOLS)/node_modules/.bin/bun --version
	$(TOOLS)/node_modules/.bin/opencode --version
	python3 -m sandbox.runtime.models_catalog $(TOOLS)/node_modules/.bin/opencode $(TOOLS)/opencode-plugin/models
	touch $@

clean:
	rm -rf $(VENV) $(TOOLS) .web .web-builds .states
