# The two commands of the README. Each creates the virtualenv and installs what it needs, so both work
# on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test install install-dev

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(PY)
	$(PY) -m pip install -q -r requirements.txt

install-dev: $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt

# Migrate, seed the demo, then the web server and the workers until Ctrl-C (see bin/run).
run: install
	PY=$(PY) bin/run

# The whole suite on PostgreSQL (what production runs), then the platform's tests again on the
# embedded SQLite default (but those marked `once`, whose checks do not depend on the database).
# TEST_DATABASE_URL overrides the local PostgreSQL.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test

# The browser tests drive Debian's Chromium (Playwright's own browser download does not work here);
# CI runs as root on Debian, so a fresh machine gets it from apt.
test: install-dev
	$(VENV)/bin/ruff check .
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -q
	$(PY) -m pytest -q tests/platform -m "not postgres and not once"
