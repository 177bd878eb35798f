# Everything a fresh machine needs goes through here and pyproject.toml.
#
# Installs are the same on every machine: requirements.lock pins every package (with hashes) to
# the versions the suite passed with. `make lock` re-resolves it after pyproject.toml changes;
# `make test-latest` installs the newest releases pyproject.toml allows into a separate venv and
# runs the suite there, so a new release that breaks us shows up there first, not for a user.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LATEST := .venv-latest

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_LEVEL := WARNING

.PHONY: demo test test-fast test-latest lint lock bench emulator clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# The browser the review page's tests drive: Debian's chromium (Playwright never downloads one).
# Installed once, as CI runs `make test` as root on a clean machine; the tests fail without it.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update && apt-get install -y --no-install-recommends chromium

demo: $(STAMP)
	$(BIN)/narrate run configs/demo.yaml

test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

test-latest: $(CHROMIUM)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet --upgrade pip
	$(LATEST)/bin/pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev,m4b]"
	$(LATEST)/bin/pip list --format=freeze > $(LATEST)/versions.txt
	$(LATEST)/bin/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/mypy

# Re-resolve the pinned versions (newest that pyproject.toml allows), for every platform.
lock: $(STAMP)
	$(BIN)/pip install --quiet "uv>=0.5"
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra m4b --generate-hashes --universal \
		--python-version 3.11 --quiet -o requirements.lock

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf out .narrate-cache .pytest_cache .mypy_cache
