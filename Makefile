# Yunrong: two commands. `make run` serves the demo; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?= -n 2

.PHONY: run test install lint typecheck unit lock clean-db help

help:
	@echo "make run    install, migrate var/yunrong.db, seed the demo, serve http://$(HOST):$(PORT) with the worker"
	@echo "make test   install, then lint, type check, import contracts and every test"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Yunrong needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the lock or the project metadata changed.
$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

run: install
	@mkdir -p var
	YUNRONG_DEMO=true $(BIN)/yunrong db upgrade
	YUNRONG_DEMO=true $(BIN)/yunrong demo seed
	YUNRONG_DEMO=true $(BIN)/yunrong demo loan
	@$(BIN)/yunrong demo logins
	@echo "Serving on http://$(HOST):$(PORT)  (API docs: http://$(HOST):$(PORT)/docs; Ctrl-C stops)"
	@export YUNRONG_DEMO=true YUNRONG_PUBLIC_URL=http://$(HOST):$(PORT); \
	  $(BIN)/yunrong worker & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/yunrong serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

unit: install
	$(BIN)/pytest tests/unit -q

# Regenerate the lock after changing dependencies in pyproject.toml (needs pip-tools).
lock:
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --strip-extras --extra dev --generate-hashes --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

clean-db:
	rm -f var/yunrong.db var/yunrong.db-wal var/yunrong.db-shm
