# ssl-bench: `make demo` (pretrain SimCLR, BYOL and SimSiam on the embedded data, print the
# table), `make test` (`make lint`: ruff check + format check, then the tests), `make format`
# (ruff format, then ruff's fixes: import order, upgrades) and `make bench` (performance
# benchmarks: benchmarks/run.py, ARGS=--quick for a smoke run). All create .venv and install the
# project on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
DEMO_DIR ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)
ARGS ?=

.PHONY: demo test test-slow lint format bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ssl-bench --multirun method=simclr,byol,simsiam hydra.sweep.dir=$(DEMO_DIR) $(ARGS)
	$(VENV)/bin/ssl-bench-report --runs $(DEMO_DIR)

test: lint
	$(PY) -m pytest -q -m "not slow" $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(ARGS)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/run.py $(ARGS)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

clean:
	rm -rf runs multirun outputs wandb .pytest_cache
