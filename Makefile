# Thin targets: each calls the CLI. A fresh clone needs only `make report` and `make test`.
PYTHON ?= python3
# The CPU wheel on machines like the CI one; on a GPU cluster: make install TORCH=torch (or
# install your CUDA build of torch into .venv first: an installed torch is kept).
TORCH ?= torch==2.13.0
EXP ?= demo
VENV := .venv
BIN := $(VENV)/bin
XITT := $(BIN)/xitt
STAMP := $(VENV)/.installed-stamp
# `make test` runs the fast suite; `make test SLOW=1` adds the slow tests (what CI runs).
MARKERS := $(if $(SLOW),not gpu,not slow and not gpu)

.PHONY: install report test demo grid bench calibrate gpu-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]" && touch $(STAMP)

install: $(STAMP)

report: $(STAMP)
	$(XITT) report runs/$(EXP)

test: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(XITT) tasks --validate && $(BIN)/python -m pytest -q -m "$(MARKERS)" $(PYTEST_ARGS)

demo: $(STAMP)
	$(XITT) synth --out .cache/synth && $(XITT) run runs/demo --offline && $(XITT) collect runs/demo

grid: $(STAMP)
	$(XITT) run runs/nli-vs-qa

bench: $(STAMP)
	$(XITT) bench

calibrate: $(STAMP)
	$(XITT) calibrate --out runs/calibration.csv

# The tiny chain in bf16 and fp16 on a CUDA device, and examples/s against transformers.Trainer;
# without a GPU both steps say they were skipped.
gpu-check: $(STAMP)
	$(BIN)/python -m pytest -q -rs -m gpu tests/test_gpu.py && $(XITT) bench --part gpu
