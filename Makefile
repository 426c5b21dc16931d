# Two entry points (see README):
#   make report  - set up .venv and run the full verification report with figures
#   make test    - set up .venv and run the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export MPLBACKEND := Agg
# The committed real training trace feeds the report's real-data rows when present.
TRACE ?= results/traces/FD001-gaba-seed0.npz
REPORT_ARGS ?= $(if $(wildcard $(TRACE)),--trace $(TRACE),)

.PHONY: setup report test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The editable install is redone only when what it reads changes (pyproject.toml,
# constraints.txt): pip's own no-op check costs several seconds of every `make report`.
STAMP := $(VENV)/.installed

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

setup: $(STAMP)

report: setup
	$(BIN)/gaba-control report --jobs 2 $(REPORT_ARGS)

test: setup
	$(BIN)/python -m ruff check gaba_control analysis benchmarks tests
	$(BIN)/python -m pytest -n 2 -m "slow or not slow" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m benchmarks.bench_controller

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache *.egg-info
