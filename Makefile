# Clearhouse. Quick start: `make run`, then `make test`. Needs only Python 3.11 (python3.11 or python3).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-profile bench-ledger check-boundaries clean-data help

help:
	@echo "make run    start the stack (API :8000, admin, worker, beat, sandbox acquirer :8001)"
	@echo "make test   run the test suite (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)"
	@echo "make lint   ruff and the import-linter boundary contracts"
	@echo "make bench  the benchmark (QUICK=1: under 2 minutes); results in bench/results/, see docs/performance.md"
	@echo "make bench-ledger  ledger postings/s vs pgbench on the same SQL (BENCH_ARGS=--quick for a short run)"

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m config.devstack run

test: $(STAMP) lint
	$(BIN)/python -m config.devstack test $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

bench-profile: $(STAMP)
	$(BIN)/python -m bench.profile $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean-data:
	-$(BIN)/python -m config.devstack stop-services
	rm -rf .data

bench-ledger: $(STAMP)
	$(BIN)/python -m bench.ledger $(BENCH_ARGS)
