# Two entry points for a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check

.PHONY: demo test venv install install-dev lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned (pip takes the pinned wheels this machine keeps on disk)
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1

venv: $(BIN)/python

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install -q -e '.[offline,report]'
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(PIP) install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/aigve run demo --suite offline --out results/demo

test: install-dev
	$(BIN)/python -m pytest -q

lint: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) results .pytest_cache
