# napari-mpi: the two commands of the README.
#   make demo   set everything up and run the main job on the embedded defaults
#   make test   set everything up (Python packages and the GUI test libraries) and run the tests
# torch is pinned in every install command (constraints.txt): an unpinned torch pulls CUDA.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.napari-mpi-installed
LINT_PATHS := src tests benchmarks

.PHONY: setup system-deps demo test lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -c constraints.txt torch==2.13.0
	$(PY) -m pip install -c constraints.txt -e ".[all,test]"
	touch $(STAMP)

setup: $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

demo: setup
	$(VENV)/bin/napari-mpi demo --out out/demo

lint: setup
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

format: setup
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

test: setup system-deps lint
	xvfb-run -a $(PY) -m pytest

bench: setup
	$(PY) benchmarks/bench_mdf_io.py
	$(PY) benchmarks/bench_simulation.py
	$(PY) benchmarks/bench_reconstruction.py
	$(PY) benchmarks/bench_defaults.py --digits 20
	$(PY) benchmarks/bench_learned.py --json benchmarks/results/learned.json
	$(PY) benchmarks/bench_learned.py --signal calibration \
		--json benchmarks/results/learned_calibration.json

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
