# Two entry points do all set-up on a fresh machine: `make repro` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed
# Stage commands in dvc.yaml call `seqpipe`; put the venv first on PATH for them.
export PATH := $(BIN):$(PATH)

.PHONY: repro test test-slow bench venv clean-venv dvc.yaml

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

# Two workers (the machine CI runs on has 2 cores); worksteal balances the few long pipeline tests.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 --dist worksteal

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# dvc.yaml's stages come from the model folders (deps = what each stage imports); run after adding a model.
dvc.yaml: $(STAMP)
	$(BIN)/seqpipe dvc-yaml

clean-venv:
	rm -rf $(VENV)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run
