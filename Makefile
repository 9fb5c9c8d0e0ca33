# Two commands on a fresh machine: `make demo` and `make test`. Both create the virtual
# environment and install the project first (once; again when pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
WORK   ?= .work

.PHONY: demo test test-fast test-deps chromium postgresql lint bench bench-large bench-deps install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# byte-compile every installed module once: with PYTHONDONTWRITEBYTECODE set (as on this CI's machines)
	# a missing or stale .pyc is compiled again by every process, about 1 s of each delivery
	$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
		kpdeliver flows tasks expectations > /dev/null || true
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kpdeliver demo --work $(WORK)/demo

# The floors (import-linter), style (ruff lint and format) and types (mypy), all configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# What the whole suite needs beside the project's venv, each made once: Label Studio (its own venv and
# a migrated template database), Ultralytics (its own venv, the consumer check of YOLO trees) and
# Debian's chromium (the report's browser test) and PostgreSQL (Prefect's server on the production
# database), each installed only where it is missing.
test-deps: $(STAMP) ls-template bench-deps chromium postgresql

chromium:
	infra/ci/install-chromium.sh

postgresql:
	infra/ci/install-postgresql.sh

# The tools are passed by their place in this checkout; a missing one fails its tests, and any skipped
# test fails the run (KPDELIVER_NO_SKIPS, tests/conftest.py).
test: lint test-deps
	KPDELIVER_LS_VENV=$(abspath $(LS_VENV)) KPDELIVER_LS_TEMPLATE=$(abspath $(LS_TEMPLATE)) \
	KPDELIVER_ULTRA_VENV=$(abspath $(WORK)/ultra-venv) KPDELIVER_NO_SKIPS=1 \
		$(BIN)/python -m pytest -q -p no:cacheprovider

# The inner loop, under a minute on two cores (pytest-xdist): no Prefect, no moto, no Great Expectations
# (tests/conftest.py).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" -n 2

bench: $(STAMP)
	$(BIN)/python bench/convert.py
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/qa_detection.py
	$(BIN)/python bench/synth.py

bench-large: $(STAMP)
	$(BIN)/python bench/convert.py --instances 1000000 --images 200000 --repeat 3
	$(BIN)/python bench/validate.py --instances 1000000 --images 200000 --runs 3

clean:
	rm -rf $(WORK) $(VENV) *.egg-info

# Ultralytics (AGPL) only as a benchmark reference and a consumer check, never imported by the
# product: its own venv, CPU torch (no CUDA packages).
bench-deps: $(WORK)/ultra-venv/.installed-stamp

$(WORK)/ultra-venv/.installed-stamp:
	$(PYTHON) -m venv $(WORK)/ultra-venv
	echo "torch==2.13.0" > $(WORK)/torch-constraint.txt
	$(WORK)/ultra-venv/bin/pip install --quiet -c $(WORK)/torch-constraint.txt torch==2.13.0 ultralytics
	touch $@

include infra/label-studio/ls.mk
