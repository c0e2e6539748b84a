# Every target creates .venv and installs what it needs when it is missing.
PYTHON ?= python3.11
# The folder operator/ would shadow the standard library's `operator` for any `python -m ...`
# started here; never put the working directory on sys.path (Python >= 3.11).
export PYTHONSAFEPATH := 1
VENV   := .venv
BIN    := $(VENV)/bin
# Re-installs when pyproject.toml changes.
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
EXTRAS := operator,runtime,local,demo,test

.PHONY: help install test lint crds demo bench clean

help:
	@echo "make demo   - the local-cluster story: fault, restart from checkpoint, failover"
	@echo "make test   - every test (unit, integration, e2e)"
	@echo "make lint   - ruff"
	@echo "make crds   - regenerate crds/*.yaml from the pydantic models"
	@echo "make bench  - benchmarks (print ratios; see bench/RESULTS.md)"

install: $(STAMP)

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build on this machine's disk; a bare `torch` would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-*
	touch $@

# Two workers, a module each at a time (its cluster and operator fixtures stay within one worker); the slowest
# tests are listed at the end. One test alone: .venv/bin/pytest tests/path.py::name
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadfile --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .

# The chart ships the same CRDs (helm/tandem/crds/; tests/helm keeps them identical).
crds: $(STAMP)
	$(BIN)/tandem crds --output crds/
	cp crds/*.yaml helm/tandem/crds/

demo: $(STAMP)
	$(BIN)/tandem demo

bench: $(STAMP)
	$(BIN)/python bench/operator_scale.py

clean:
	rm -rf $(VENV) build *.egg-info
