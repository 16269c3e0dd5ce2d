# The two commands of README.md: `make run` (the service) and `make test` (the suite).
# Local Kafka and MongoDB-wire server: devservices/services.sh (see devservices/README.md).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
SERVICES := devservices/services.sh
PYTEST_ARGS ?=
# make test KEEP_SERVICES=1 leaves the services running afterwards.
KEEP_SERVICES ?=

.PHONY: install services services-stop services-status run test check bench

install: $(VENV)/.installed

# Re-installs only when pyproject.toml changes (the install is editable).
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $@

services: install
	$(SERVICES) start

services-stop:
	$(SERVICES) stop

services-status:
	@$(SERVICES) status

run: install services
	exec $(VENV)/bin/faststream run consumers.app:app

# Starts the services, runs pytest, always stops the services, exits with pytest's status.
test: install
	@trap '[ "$(KEEP_SERVICES)" = 1 ] || $(SERVICES) stop' EXIT; \
	trap 'exit 130' INT TERM; \
	$(SERVICES) start && $(PY) -m pytest $(PYTEST_ARGS)

check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --explicit-package-bases consumers providers schemas simulator tests benchmarks

# Figures for README's performance section (needs the services; prints, asserts nothing).
bench: install services
	$(PY) -m benchmarks.pipeline throughput --tasks 2000
	$(PY) -m benchmarks.pipeline in-flight --tasks 10000 --generation-s 120 --window-s 60
