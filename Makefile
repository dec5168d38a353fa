# One Makefile for people, the README and CI.  `make run` and `make test` do all set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8080
TERMINAL_PORT ?= 8081
DEMO_RATE ?= 10

.PHONY: run test lint unit lock bench stages redis-server browser wrk valgrind clean

# Every install comes from uv.lock (hashes for runtime and dev dependencies), through uv,
# pinned here and kept in its own virtualenv so that a sync never removes it.
UV_VERSION := 0.13.8
UV_TOOL    := .venv-uv
UV         := $(UV_TOOL)/bin/uv
export UV_PYTHON_DOWNLOADS := never

$(UV):
	$(PYTHON) -m venv $(UV_TOOL)
	$(UV_TOOL)/bin/pip install --quiet "uv==$(UV_VERSION)"

# `--locked`: a lock that no longer matches pyproject.toml is an error, not a silent
# re-resolve; `make lock` is the deliberate way to change it.
$(STAMP): uv.lock pyproject.toml | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --quiet --locked --extra dev \
	  --python "$$(command -v $(PYTHON))"
	touch $(STAMP)

# Refresh the lock to the newest releases pyproject.toml allows; then `make test`, commit.
lock: | $(UV)
	$(UV) lock --upgrade

# The dev key set. Its tokens are printed once; for the dev set only, they are also kept
# (owner-only) in keys/dev/dev-tokens.txt so the demo traffic and the dashboard can use them.
keys/dev/trust-list.json: | $(STAMP)
	@mkdir -p keys/dev && umask 077 && \
	  $(PY) -m validator keys init keys/dev --config config | tee keys/dev/dev-tokens.txt
	@grep '^  admin: ' keys/dev/dev-tokens.txt | awk '{print $$2}' > keys/dev/dev-admin-token

# The tests start their own redis-server on a free loopback port; it must be installed.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server >/dev/null; }

# The dashboard's browser tests drive Debian's Chromium (never a test tool's own browser
# download, which fails on closed networks); a small CJK font makes the page legible.
browser:
	@{ [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk"; } || { \
	  echo "installing chromium and a CJK font (Debian packages)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }

# The service on the embedded store, and simulated terminals keeping traffic flowing
# (their validations through the lean terminal front on TERMINAL_PORT).
run: $(STAMP) keys/dev/trust-list.json
	@$(PY) -m validator check-ports --host $(HOST) --port $(PORT) \
	    --terminal-port $(TERMINAL_PORT) || { \
	  echo "make run: is it running already? Stop it, or give this one other ports:" \
	    "make run PORT=... TERMINAL_PORT=..." >&2; exit 2; }
	@echo "dashboard: http://$(HOST):$(PORT)/dashboard  (tokens: keys/dev/dev-tokens.txt)"
	@echo "terminals: http://$(HOST):$(TERMINAL_PORT)/v1/validations (or on port $(PORT))"
	@trap 'trap - INT TERM EXIT; kill 0' INT TERM EXIT; \
	  $(PY) -m terminals_sim demo --url http://$(HOST):$(PORT) --keys keys/dev --config config \
	    --terminal-url http://$(HOST):$(TERMINAL_PORT) \
	    --rate $(DEMO_RATE) --admin-token-file keys/dev/dev-admin-token & \
	  $(PY) -m validator serve --config config --keys keys/dev --store memory \
	    --host $(HOST) --port $(PORT) --terminal-port $(TERMINAL_PORT)

lint: $(STAMP)
	$(BIN)/ruff check validator terminals_sim tests bench
	$(BIN)/mypy --strict validator terminals_sim bench
	$(BIN)/lint-imports

unit: $(STAMP) redis-server browser
	$(BIN)/pytest -q

test: lint unit

# The throughput benchmark (docs/benchmarks.md): a private redis-server, the
# validator with BENCH_WORKERS processes on core 0, an open-loop load generator
# (BENCH_GENERATOR=lean: bench/openloop.py, or sim: the simulator's runner) stepping the
# rate up on the other core(s), and the micro-benchmarks. Other knobs are
# environment variables: BENCH_RATES, BENCH_STEP_S, BENCH_KINDS, BENCH_SERVER_CPUS, …
BENCH_WORKERS ?= 1
# It measures the interpreter production runs: an optimized (PGO + LTO) CPython, as
# Debian's /usr/bin/python3 and the Dockerfile's python:3.11-slim are. A self-built
# pyenv/asdf Python usually is not, and costs 15-40 % more CPU per validation
# (docs/benchmarks.md). BENCH_PYTHON=python3 measures whatever python3 is instead.
BENCH_PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo $(PYTHON))
BENCH_VENV   ?= .venv-bench
# wrk (Debian package) measures one core's ceiling: closed loop, saturating the validator.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing wrk (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk >/dev/null; }

$(BENCH_VENV)/.installed: uv.lock pyproject.toml | $(UV)
	UV_PROJECT_ENVIRONMENT=$(BENCH_VENV) $(UV) sync --quiet --locked --extra dev \
	  --python "$$(command -v $(BENCH_PYTHON))"
	touch $@

bench: $(BENCH_VENV)/.installed redis-server wrk
	$(BENCH_VENV)/bin/python -m bench.run --workers $(BENCH_WORKERS)

# Instructions per step of a validation (bench/stages.py, callgrind): deterministic where
# the wall clock is not, to compare two versions of the code. valgrind: Debian package.
valgrind:
	@command -v valgrind >/dev/null 2>&1 || { \
	  echo "installing valgrind (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq valgrind >/dev/null; }

stages: $(BENCH_VENV)/.installed valgrind
	$(BENCH_VENV)/bin/python -m bench.stages --kind card
	$(BENCH_VENV)/bin/python -m bench.stages --kind qr --n 500

clean:
	rm -rf $(VENV) $(UV_TOOL) .venv-bench .mypy_cache .ruff_cache .pytest_cache
