# The README's two commands. Both start from nothing: they create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: demo test test-unit lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# Azurite (the Azure Storage emulator the tests start) comes from the npm lockfile.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

## demo: start the sample API and sample database, load every model into SQLite, query the result
demo: $(STAMP)
	$(PY) -m samples.demo

## test: the whole test suite (CI runs exactly this through .ci/run)
test: $(STAMP) $(NPM_STAMP)
	$(PY) -m pytest

## test-unit: the tests that need no PostgreSQL, MariaDB or Azurite (marker `services`, tests/conftest.py)
test-unit: $(STAMP)
	$(PY) -m pytest -m "not services"

## lint: ruff and mypy over the app and the tests (settings in pyproject.toml); zero findings to pass
lint: $(STAMP)
	$(VENV)/bin/ruff check shared cli devhost functions main.py function_app.py tests
	$(VENV)/bin/mypy

## bench: benchmarks, printing ratios against baselines measured in the same run
bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .venv-bench node_modules .kspyder .pytest_cache .hypothesis
