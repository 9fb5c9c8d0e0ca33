# Label Studio in its own venv, for the live-tool tests and local use. `include infra/label-studio/ls.mk`
# from the Makefile; `make test` then depends on ls-template so the tests/tools e2e runs, never skips.
LS_VENV     ?= $(WORK)/ls-venv
LS_TEMPLATE ?= $(WORK)/ls-template
LS_PORT     ?= 8080
LS_ROOT     ?= $(CURDIR)

.PHONY: ls-venv ls-template ls-start test-tools

ls-venv: $(LS_VENV)/.installed-stamp

$(LS_VENV)/.installed-stamp:
	PYTHON=$(PYTHON) infra/label-studio/install.sh $(LS_VENV)

# A migrated SQLite database, made once (2-3 min); every start copies it (about 15 s).
ls-template: $(LS_TEMPLATE)/.complete

$(LS_TEMPLATE)/.complete: $(LS_VENV)/.installed-stamp
	$(PYTHON) infra/label-studio/ls_server.py template --venv $(LS_VENV) --dir $(LS_TEMPLATE)

# Label Studio for people: serves the batches under LS_ROOT, prints the token to export.
ls-start: ls-template
	$(PYTHON) infra/label-studio/ls_server.py start --venv $(LS_VENV) --dir $(LS_TEMPLATE) --root $(LS_ROOT) --port $(LS_PORT)

test-tools: $(STAMP) ls-template
	KPDELIVER_LS_VENV=$(abspath $(LS_VENV)) KPDELIVER_LS_TEMPLATE=$(abspath $(LS_TEMPLATE)) \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/tools
