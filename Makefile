# The two commands of the README. Each creates the virtualenv and installs what it needs, so both work
# on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test install install-dev

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(PY)
	$(PY) -m pip install -q -r requirements.txt

install-dev: $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt

run: install
	$(PY) -m engine train examples/ppo_synthetic.json

test: install-dev
	$(PY) -m pytest -q
