# Both targets do the whole set-up from a fresh clone and are safe to re-run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all test-slow lint install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project metadata changes; torch/torchvision are pinned to the builds on these machines.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

# ruff over the whole tree and mypy on seqcore, both configured in pyproject.toml; .ci/run runs it before the tests.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow"

# Only the slow tests (fresh-venv installs of each extra, long runs): what .ci/nightly runs.
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache .mypy_cache
