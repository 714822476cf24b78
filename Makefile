# The two commands a newcomer needs: `make run` and `make test`. Both create and use .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt
CHROMIUM := /usr/bin/chromium
NGINX := /usr/sbin/nginx

.PHONY: run test test-slow fuzz lint install install-dev install-model chromium nginx bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip

# Stamp files re-run an install only when the dependencies change.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[dev]'
	touch $@

# llama-cpp-python builds from source the first time (several minutes on 2 cores).
$(VENV)/.installed-model: $(VENV)/.installed
	@echo "Installing the local model server (the first build takes a few minutes)..."
	$(PIP) -e '.[dev,local-model]'
	touch $@

install: $(VENV)/.installed
install-model: $(VENV)/.installed-model

chromium:
	@test -x $(CHROMIUM) || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The proxy in front of the replicas of `switchboard run --replicas N` and their tests.
nginx:
	@test -x $(NGINX) || { \
	  echo "Installing Debian's nginx for several replicas..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }

run: install-model
	$(BIN)/switchboard run

test: install-model chromium nginx
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -m "not slow"

# The tests marked slow (several replicas behind the proxy, each over a minute).
test-slow: install-model chromium nginx
	$(BIN)/pytest -m slow

# The API fuzzing of `make test` with many more examples per operation (a few minutes).
fuzz: install
	SWITCHBOARD_FUZZ_EXAMPLES=100 $(BIN)/pytest tests/hub/test_fuzz_api.py -s --timeout 1800

bench: install
	$(BIN)/python bench/gateway_overhead.py

clean:
	rm -rf $(VENV) data .pytest_cache
