# Two commands on a fresh machine: `make demo` and `make test`. Both create the virtual
# environment and install the project first (once; again when pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
WORK   ?= .work

.PHONY: demo test bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kpdeliver demo --work $(WORK)/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/convert.py
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/qa_detection.py

clean:
	rm -rf $(WORK) $(VENV) *.egg-info
