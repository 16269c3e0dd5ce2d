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

.PHONY: install lock services services-stop services-status run test test-fast check bench

install: $(VENV)/.installed

# Installs the pinned, hash-checked dev lock (runtime + dev tools) with plain pip, then the
# project itself, editable, without dependencies. Re-installs only when pyproject.toml or the
# lock changes. It adds and updates packages but never removes any: rm -rf $(VENV) for an exact one.
$(VENV)/.installed: pyproject.toml requirements-dev.lock
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --disable-pip-version-check -q --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $@

# Regenerates requirements.lock (runtime) and requirements-dev.lock (runtime + dev extra) from
# pyproject.toml, with hashes, for CPython 3.11 on Linux, using uv (installed into $(VENV) at the
# version below). Pins still allowed by pyproject.toml are kept; `make lock LOCK_ARGS=--upgrade`
# moves everything to the newest allowed (`LOCK_ARGS='-P httpx'` moves one package).
UV_VERSION ?= 0.13.9
LOCK_ARGS ?=
UV_COMPILE = $(VENV)/bin/uv pip compile -q --python-version 3.11 --python-platform linux \
	--generate-hashes --custom-compile-command 'make lock' $(LOCK_ARGS)
lock:
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --disable-pip-version-check -q 'uv==$(UV_VERSION)'
	$(UV_COMPILE) pyproject.toml -o requirements.lock
	$(UV_COMPILE) pyproject.toml --extra dev -c requirements.lock -o requirements-dev.lock

services: install
	$(SERVICES) start

services-stop:
	$(SERVICES) stop

services-status:
	@$(SERVICES) status

# Stops the MongoDB-wire server and deletes its data (.devservices/mongo/data.mv).
.PHONY: services-reset
services-reset:
	$(SERVICES) reset

run: install services
	exec $(VENV)/bin/faststream run consumers.app:app

# Both tiers: the in-process one (no servers), then the one on the real servers, which it
# starts and always stops afterwards. Exits with the first failing tier's status.
test: test-fast
	@trap '[ "$(KEEP_SERVICES)" = 1 ] || $(SERVICES) stop' EXIT; \
	trap 'exit 130' INT TERM; \
	$(SERVICES) start && $(PY) -m pytest -m integration $(PYTEST_ARGS)

# The in-process tier alone (seconds, no Kafka or MongoDB). Its coverage of consumers/ must
# stay at 85% or more.
test-fast: install prometheus
	$(PY) -m pytest -m "not integration" --cov=consumers --cov-report=term:skip-covered \
		--cov-fail-under=85 $(PYTEST_ARGS)

# Prometheus' promtool and server, for the alert-rule tests (tests/unit/test_alert_rules.py,
# tests/e2e/test_observability.py): Debian's `prometheus` package, installed with apt-get when
# either is missing (4 to 7 s measured, download included; nothing once installed). Without apt-get
# or root it says so and succeeds: those tests are then skipped with that message. A failed
# install fails. On a host run by systemd, the package also starts a `prometheus` service on
# :9090; the tests run their own on a free port.
.PHONY: prometheus
prometheus:
	@if command -v promtool >/dev/null && command -v prometheus >/dev/null; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
		echo "no apt-get here: install Prometheus 2.x (promtool and prometheus on PATH) yourself;" \
			"the alert-rule tests are skipped until then" >&2; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "not root: run 'sudo apt-get install -y prometheus' (or make prometheus as root);" \
			"the alert-rule tests are skipped until then" >&2; exit 0; fi; \
	echo "installing Debian's prometheus package (promtool and the server) with apt-get"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q --no-install-recommends prometheus >/dev/null \
		|| { apt-get update -q >/dev/null && \
			apt-get install -y -q --no-install-recommends prometheus >/dev/null; }

check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --explicit-package-bases consumers providers schemas simulator tests benchmarks \
		client/video_client client/contract_sync.py

# Figures for README's performance section (needs the services; prints, asserts nothing).
bench: install services
	$(PY) -m benchmarks.pipeline defaults
	$(PY) -m benchmarks.pipeline throughput --tasks 2000
	$(PY) -m benchmarks.pipeline throughput --tasks 2000 --instances 2
	$(PY) -m benchmarks.pipeline in-flight --tasks 10000 --generation-s 120 --window-s 60

# The fuzz tier at scale (needs the services): hostile records interleaved with valid requests
# through the real service; prints figures, fails on a broken guarantee (FUZZ_ARGS='--seed N').
FUZZ_RECORDS ?= 20000
FUZZ_ARGS ?=
.PHONY: fuzz
fuzz: install services
	$(PY) -m benchmarks.fuzz --records $(FUZZ_RECORDS) $(FUZZ_ARGS)
	$(PY) -m benchmarks.fuzz --records $$(( $(FUZZ_RECORDS) / 4 )) --auth jwt $(FUZZ_ARGS)

# One command on a fresh clone: installs, starts the local services (those not running yet), the
# vendor simulator and the service, sends one request to each vendor with the CLI, shows their
# progress live, prints where the videos are, and stops what it started (demo/demo.sh).
.PHONY: demo
demo: install $(VENV)/.client-installed
	bash demo/demo.sh

# The client distribution (client/), editable, for its `video-service` command.
$(VENV)/.client-installed: client/pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e client
	@touch $@

# Generated documents: docs/asyncapi.json (the AsyncAPI document of what the app declares, made
# with an empty environment) and the client's copy of the contract (client/contract_sync.py).
# Tests fail when either is stale.
.PHONY: docs
docs: install
	$(PY) docs/asyncapi.py
	$(PY) client/contract_sync.py
