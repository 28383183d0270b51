# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench mutate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/loopcrawl demo

# The suite in TEST_WORKERS processes (pytest-xdist; TEST_WORKERS=0: one process): its
# tests mostly wait on their servers, so two processes halve the time on two
# cores. Not in pyproject's addopts: mutmut runs pytest itself, in-process.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy loopcrawl
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy loopcrawl

bench: setup
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/bench_outputs.py --write
	$(BIN)/python benchmarks/bench_redis.py --write
	$(BIN)/python benchmarks/bench_workers.py --write

# Mutation testing of the modules that carry the crawl's promises (list and
# tests in pyproject.toml [tool.mutmut]; results in docs/testing.md). Not part
# of `make test`: a full run takes hours on two cores. MUTATE=name-glob runs
# some mutants only, e.g. make mutate MUTATE='loopcrawl.urls*'.
MUTATE ?=
mutate: setup
	$(BIN)/python -m pip install -q -e '.[mutate]'
	nice -n 10 $(BIN)/mutmut run --max-children 2 $(MUTATE)
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache mutants
