# tradechaos — the two commands a new user types are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
N ?= 10
BACKENDS ?=

.DEFAULT_GOAL := help
.PHONY: help setup demo incidents soak test test-unit test-integration test-docker bench lint images clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tradechaos needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install tradechaos with dev extras (idempotent)

demo: setup ## run the Paradex incident experiment, both variants, and print the verdicts
	$(BIN)/python -m chaos.demo

incidents: setup ## the whole incident library, every variant with faults and as a control, 2 at once
	$(BIN)/tradechaos run experiments/incidents/*.yaml --controls --jobs 2

soak: setup ## the incident library N times per backend (N=10; BACKENDS="process docker"); flakes per variant
	$(BIN)/python -m bench.soak --passes $(N) $(if $(BACKENDS),--backends "$(BACKENDS)")

test: setup ## run the whole test suite (unit, integration, docker when an engine runs)
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests

test-unit: setup ## fast unit tests only
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/unit

test-integration: setup ## tests that start real processes
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/integration

test-docker: setup ## tests that need a Docker engine
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/docker

bench: setup ## benchmarks: proxy, sequencer, checkers, schedule, incidents, explore, stackup... (ratios, same-run baselines)
	$(BIN)/python -m bench

# mypy on tests/: one run per folder (tests/*/, new ones included), each folder its own import
# root as under pytest (no packages; conftest.py repeats), plus what tests import across
# folders. tests/ itself stays off the path (tests/docker would shadow the docker library);
# the vendored Chaos Mesh validator is not ours to type.
TESTS_MYPYPATH := tests/integration:tests/data/plugins:examples/minidex/src
lint: setup ## ruff, mypy --strict on chaos/, examples/minidex and tests/, the import contracts
	$(BIN)/ruff check chaos tests bench examples
	$(BIN)/ruff format --check chaos tests bench examples
	$(BIN)/mypy
	$(BIN)/mypy examples/minidex/src/minidex
	@test -z "$(wildcard tests/*.py)" || { echo "$(wildcard tests/*.py): move into a tests/ folder"; exit 1; }
	@status=0; for dir in tests/*/; do echo "MYPYPATH=$(TESTS_MYPYPATH) $(BIN)/mypy $$dir"; \
	  MYPYPATH=$(TESTS_MYPYPATH) $(BIN)/mypy --exclude '^tests/k8s/data/chaos-mesh/' $$dir || status=1; \
	done; exit $$status
	$(BIN)/lint-imports

images: setup ## build the docker images (base image made with debootstrap when no registry answers)
	$(BIN)/python -m chaos.backends.images build

clean: ## remove the venv, caches and leftovers of runs (never run folders)
	-test -x $(BIN)/tradechaos && $(BIN)/tradechaos cleanup
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
