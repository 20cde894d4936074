# make rehearse : the whole cutover and a rollback drill against the local twin
# make test     : type check, then unit + integration tests (brings up its own twin)
SHELL := /bin/bash
VENV  := .venv
INV   := $(VENV)/bin/inv
TWIN  ?= /var/tmp/twilight-ops/rehearse

.PHONY: bootstrap test typecheck unit rehearse twin-up twin-down bench clean

bootstrap:
	@scripts/bootstrap.sh

# Three pytest-xdist workers: each test module runs whole on one worker (loadfile: a twin module's
# tests in order, with its module fixtures), and each worker brings up its own twin (tests/conftest.py).  WORKERS=0 runs in one process.
# --no-loadscope-reorder: the modules go out in collection order, which tests/module_order.py makes longest
# first (xdist would otherwise sort them by their number of tests: the many small unit modules first).
WORKERS ?= 3

test: bootstrap typecheck
	$(VENV)/bin/python -m pytest -q --durations=25 $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadfile --no-loadscope-reorder)

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
