# Label Studio in its own venv, for the live-tool tests and local use. `include infra/label-studio/ls.mk`
# from the Makefile; `make test` then depends on ls-template so the tests/tools e2e runs, never skips.
#   make ls-start LS_ROOT=/srv/batches LS_PORT=8080   serves the batch folders under LS_ROOT; tool.url's port
#   make ls-stop                                      stops it (also: Ctrl-C, or killing ls-start)
# ls-start first checks that every client config in LS_CONFIGS with a tool: section has its batch
# folder under LS_ROOT and its tool.url on LS_PORT.
LS_VENV     ?= $(WORK)/ls-venv
LS_TEMPLATE ?= $(WORK)/ls-template
LS_DATA     ?= $(WORK)/ls-data
LS_CONFIGS  ?= $(wildcard clients/*.yaml clients/*/client.yaml)
LS_PORT     ?=
LS_ROOT     ?=

.PHONY: ls-venv ls-template ls-start ls-stop test-tools

ls-venv: $(LS_VENV)/.installed-stamp

$(LS_VENV)/.installed-stamp:
	PYTHON=$(PYTHON) infra/label-studio/install.sh $(LS_VENV)

# A migrated SQLite database, made once (2-3 min); every start copies it (about 15 s).
ls-template: $(LS_TEMPLATE)/.complete

$(LS_TEMPLATE)/.complete: $(LS_VENV)/.installed-stamp
	$(PYTHON) infra/label-studio/ls_server.py template --venv $(LS_VENV) --dir $(LS_TEMPLATE)

# Label Studio for people: serves the batches under LS_ROOT on LS_PORT, prints the token to export.
ls-start: ls-template
	@test -n "$(LS_ROOT)" && test -n "$(LS_PORT)" || \
		{ echo "usage: make ls-start LS_ROOT=<folder holding the batch folders> LS_PORT=<port of tool.url>" >&2; exit 2; }
	@test -x $(BIN)/python || { echo "run 'make install' first ($(BIN)/python is missing)" >&2; exit 2; }
	$(BIN)/python infra/label-studio/check_root.py --root "$(LS_ROOT)" --port "$(LS_PORT)" $(LS_CONFIGS)
	$(PYTHON) infra/label-studio/ls_server.py start --venv $(LS_VENV) --dir $(LS_TEMPLATE) --data $(LS_DATA) --root $(LS_ROOT) --port $(LS_PORT)

ls-stop:
	$(PYTHON) infra/label-studio/ls_server.py stop --data $(LS_DATA)

test-tools: $(STAMP) ls-template
	KPDELIVER_LS_VENV=$(abspath $(LS_VENV)) KPDELIVER_LS_TEMPLATE=$(abspath $(LS_TEMPLATE)) \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/tools
