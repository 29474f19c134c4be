# Two entry points do all set-up on a fresh machine: `make repro` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed
# Stage commands in dvc.yaml call `seqpipe`; put the venv first on PATH for them.
export PATH := $(BIN):$(PATH)

.PHONY: repro test lint test-slow bench bench-compare bench-scale venv clean-venv dvc.yaml docs report browser

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

# The import layers (.importlinter), then ruff and mypy on src/ (both configured in pyproject.toml):
# each must find nothing. mypy's first run takes about 20 s, then its cache (.mypy_cache/) about 1 s.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check src
	$(BIN)/mypy src

# Two workers (the machine CI runs on has 2 cores); worksteal balances the few long pipeline tests.
# The 15 slowest tests are listed at the end: the default run must stay well under 15 minutes.
test: $(STAMP) browser
	@$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=15

# tests/report draw the report in headless Chromium: Debian's package, installed when missing (CI runs as
# root; otherwise through `sudo -n`). Without it those tests skip, and fail under CI=true.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo -n); \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	} || echo "make: chromium could not be installed: tests/report will skip" >&2

# The plots and headline metrics as one self-contained HTML page that opens offline:
# make report [REVS="main HEAD"] [REPORT=report.html]
REPORT ?= report.html
report: $(STAMP)
	$(BIN)/seqpipe report $(REVS) --output $(REPORT)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# dvc.yaml's stages come from the model folders (deps = what each stage imports); run after adding a model.
dvc.yaml: $(STAMP)
	$(BIN)/seqpipe dvc-yaml

# docs/cli.md from the argument parser and docs/params.md from the params classes (a test fails when they are stale).
docs: $(STAMP)
	$(BIN)/seqpipe docs

clean-venv:
	rm -rf $(VENV)

# Every benchmark: the comparisons, then the scale table and curves (run it on a quiet machine; hours at
# the default SCALES, SCALES="1 10" for about 15 minutes more than bench-compare).
bench: bench-compare bench-scale

# Speed and memory side by side with a reference, into benchmarks/RESULTS.md (about 25 minutes).
# BEFORE: the git revision the repro and start-up figures are compared with.
BEFORE ?= HEAD~1
bench-compare: $(STAMP)
	$(BIN)/python -m benchmarks.run --before $(BEFORE)

# Every stage of every model at 1x, 10x and 100x its default data -> benchmarks/results/scale.{md,png}
# (hours at 100x on 2 cores; SCALES="1 10" or MODELS="bandwidth freq_filter" for less).
# PROFILES="full-grid bandwidth-1m" adds the realistic profiles (benchmarks/scale.py's PROFILES).
SCALES ?= 1 10 100
MODELS ?= bandwidth freq_filter crop_ndvi ice_type ice_forecast ice_change
PROFILES ?=
bench-scale: $(STAMP)
	$(BIN)/python -m benchmarks.scale --models $(MODELS) --scales $(SCALES) --profiles $(PROFILES)
