# make demo   install, start the app, prepare and index the shipped corpora behind it
# make test   the whole test suite (what CI runs)
# make bench  the benchmarks under bench/
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
export PYTHON
# Every package comes from the lock, constraints.txt (tools/venv.sh; torch is never a CUDA build on a CPU
# machine). Upgrading is deliberate: `make lock` resolves the newest allowed releases in a throw-away venv,
# runs the fast tests there and only then rewrites constraints.txt; commit it once `make test` passes.
# `make check-latest` does the same without writing, to see upstream drift before users do.
SCRATCH ?= $(or $(TMPDIR),/tmp)/assistant-latest-venv

.PHONY: setup browser demo test test-fast bench lint lock check-latest clean

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: pyproject.toml constraints.txt Makefile tools/venv.sh tools/llamacpp.sh
	tools/venv.sh $(VENV) locked dev
	touch $@

# the app starts at once; every domain's corpora are prepared and indexed behind it, smallest first, and
# each one answers as soon as it is in (re-running resumes an interrupted build)
DEMO_ARGS ?=
demo: setup
	$(BIN)/assistant serve --build $(DEMO_ARGS)

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
	$(PIP) install --quiet -c constraints.txt -e ".[bench]"
	$(BIN)/python bench/index_build.py
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/retrieval_tatqa.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/eval.py
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/answer.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/demo.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy assistant app.py app_service.py app_views.py

# the newest releases pyproject.toml allows, tested (fast tests: adapter switching included), then locked
lock:
	rm -rf $(SCRATCH)
	tools/venv.sh $(SCRATCH) latest dev,bench
	$(SCRATCH)/bin/python -m pytest -m "not slow" -q -p no:cacheprovider
	$(SCRATCH)/bin/python tools/deps.py freeze $(SCRATCH)/bin/python > constraints.txt.new
	@git diff --no-index --stat constraints.txt constraints.txt.new || true
	mv constraints.txt.new constraints.txt
	@echo "constraints.txt updated: run 'make test' (the whole suite) and commit it"

# the same resolution without writing: which pins are behind, and do the fast tests pass on the newest releases
check-latest:
	rm -rf $(SCRATCH)
	tools/venv.sh $(SCRATCH) latest dev,bench
	@$(SCRATCH)/bin/python tools/deps.py freeze $(SCRATCH)/bin/python | diff constraints.txt - | grep '^[<>] [^#]' || echo "the lock is up to date"
	$(SCRATCH)/bin/python -m pytest -m "not slow" -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
