# Two commands matter: `make serve` (install, then run with zero configuration) and `make test` (install, start
# the services the tests need when they are not running, run the whole suite).
PYTHON ?= python3.11
VENV ?= .venv
CLIENT_VENV ?= .venv-client
PY := $(VENV)/bin/python

.PHONY: install client serve test bench lint clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

# The real scouter-ml 0.6.4 client lives in its own venv: it installs a top-level package `scouter` that would
# shadow our domain package of the same name.
$(CLIENT_VENV)/.installed:
	$(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/pip install -q -U pip
	$(CLIENT_VENV)/bin/pip install -q 'scouter-ml==0.6.4' 'numpy<3' 'pandas<3'
	touch $@

install: $(VENV)/.installed
client: $(CLIENT_VENV)/.installed

serve: install
	$(VENV)/bin/scouter serve

test: install client
	SCOUTER_CLIENT_PYTHON=$(CURDIR)/$(CLIENT_VENV)/bin/python $(PY) -m pytest -q -p no:cacheprovider

bench: install
	$(PY) -m tests.bench

lint: install
	$(VENV)/bin/ruff check supervisors actors scouter config tests

clean:
	rm -rf $(VENV) $(CLIENT_VENV) scouter_data scouter_storage .services
