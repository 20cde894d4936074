# make rehearse : the whole cutover and a rollback drill against the local twin
# make test     : type check, then unit + integration tests (brings up its own twin)
SHELL := /bin/bash
VENV  := .venv
INV   := $(VENV)/bin/inv
TWIN  ?= /var/tmp/twilight-ops/rehearse

.PHONY: bootstrap test typecheck unit rehearse twin-up twin-down bench clean

bootstrap:
	@scripts/bootstrap.sh

test: bootstrap typecheck
	$(VENV)/bin/python -m pytest -q --durations=25

typecheck: bootstrap
	$(VENV)/bin/python -m mypy

unit: bootstrap
	$(VENV)/bin/python -m pytest -q tests/unit

rehearse: bootstrap
	$(INV) rehearse --dir "$(TWIN)"

twin-up: bootstrap
	$(INV) twin.up --dir "$(TWIN)"

twin-down: bootstrap
	$(INV) twin.down --dir "$(TWIN)"

bench: bootstrap
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
