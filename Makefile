# Kepu's front door. Every target sets up what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deps-stamp
export AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/

.PHONY: help deps broker browser run up down test lint bench faults fuzz deploy-check manifests clean

help:
	@echo "make run | up | down | test | lint | bench | faults | fuzz | deploy-check | manifests"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

deps: $(STAMP)

broker: deps
	@$(PY) -m deploy.broker ensure

# Debian's chromium, chromium-driver and fonts-noto-cjk for the browser tests (tests/browser).
browser: deps
	@$(PY) -m deploy.browser ensure

run: deps broker
	$(PY) -m deploy.stack run

up: deps broker
	$(PY) -m deploy.stack up

down: deps
	$(PY) -m deploy.stack down

test: deps broker browser deploy-check
	$(PY) -m pytest

deploy-check: deps
	$(PY) -m deploy.check

# Regenerate the per-service deployment files from services/kit/services.py.
manifests: deps
	$(PY) -m deploy.manifests

bench: deps broker
	$(PY) -m bench.run

# The long fuzz run (make test runs a short one): schemathesis over /v1/openapi.json.
fuzz: deps broker
	$(PY) -m tests.fuzz --examples 200

faults: deps broker
	$(PY) -m pytest -m faults tests/test_faults.py

lint: deps
	$(VENV)/bin/ruff check .

clean: down
	rm -rf var/mongo var/log
