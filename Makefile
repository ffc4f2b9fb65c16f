# ssl-bench: `make demo` (pretrain SimCLR, BYOL and SimSiam on the embedded data, print the
# table), `make test` (`make lint`: ruff check + format check, then the tests), `make format`
# (ruff format, then ruff's fixes: import order, upgrades), `make bench` (performance
# benchmarks: benchmarks/run.py, ARGS=--quick for a smoke run), `make docs` (the documentation site,
# `mkdocs build --strict` into site/) and `make docs-serve` (the same, served at localhost:8000 while
# you edit). All create .venv and install the project (with its dev and docs extras) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
DEMO_DIR ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)
ARGS ?=
TEST_JOBS ?= 2   # pytest-xdist workers; a test file stays on one worker (its module fixtures, the SLURM cluster)

.PHONY: demo test test-slow lint format bench docs docs-serve install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,docs]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ssl-bench --multirun method=simclr,byol,simsiam hydra.sweep.dir=$(DEMO_DIR) $(ARGS)
	$(VENV)/bin/ssl-bench-report --runs $(DEMO_DIR)

test: lint
	$(PY) -m pytest -q -m "not slow" -n $(TEST_JOBS) --dist loadfile $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow -n $(TEST_JOBS) --dist loadfile $(ARGS)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/run.py $(ARGS)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --strict

clean:
	rm -rf runs multirun outputs wandb .pytest_cache site
