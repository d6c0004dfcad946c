# The two commands in README.md: `make serve` and `make test`.
# Both build .venv from pyproject.toml with every version pinned by constraints.txt,
# so an unpinned resolver can never pull gigabytes of CUDA wheels onto a CPU host.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup serve demo test lint format

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(BIN)/pip install -q --disable-pip-version-check setuptools
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(BIN)/pip install -q --disable-pip-version-check -e '.[postgres,dev]'
	touch $@

serve: $(STAMP)
	REID_HOST=$(HOST) REID_PORT=$(PORT) $(BIN)/python -m app

# A trained synthetic model and a gallery of people it never saw, served with the console.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py --host $(HOST) --port $(PORT)

test: $(STAMP)
	bash scripts/ensure_postgres.sh
	bash scripts/ensure_chromium.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/hadolint Dockerfile

format: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .
