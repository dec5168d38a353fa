# One Makefile for people, the README and CI.  `make run` and `make test` do all set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test lint unit bench redis-server clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

keys/dev/trust-list.json: | $(STAMP)
	$(PY) -m validator keys init keys/dev --config config

# The tests start their own redis-server on a free loopback port; it must be installed.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server >/dev/null; }

run: $(STAMP) keys/dev/trust-list.json
	$(PY) -m validator serve --config config --keys keys/dev --store memory --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check validator terminals_sim tests
	$(BIN)/mypy --strict validator terminals_sim
	$(BIN)/lint-imports

unit: $(STAMP) redis-server
	$(BIN)/pytest -q

test: lint unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
