# Two commands on a fresh machine: `make lab` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.chapter13-installed
PORT ?= 8888
LAB_ARGS ?=
# Jupyter refuses to run as root (containers, CI) unless told to.
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test unit notebooks lint checkpoints bench browser present clean-venv help

help:
	@echo "make lab          create .venv if missing, install, open JupyterLab on notebooks/"
	@echo "make test         create .venv if missing, install, run ruff, unit tests and every notebook (quick mode)"
	@echo "make checkpoints  retrain every shipped checkpoint (slow; see data/README.md)"
	@echo "make bench        run the benchmark scripts and print their tables"
	@echo "make present      serve presenter/ (one page per section) code-hidden with Voila, offline"
	@echo "make browser      every notebook and presenter page in headless Chromium (skipped without it)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[test,dev]"
	@touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(ROOT_ARGS) $(LAB_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

unit: $(STAMP)
	$(PY) -m pytest tests -q --ignore=tests/browser

notebooks: $(STAMP)
	CH13_QUICK=1 MPLBACKEND=Agg $(PY) -m pytest notebooks -q -p no:cacheprovider \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=600

test: lint unit notebooks

checkpoints: $(STAMP)
	$(PY) -m chapter13.train --all

bench: $(STAMP)
	@status=0; for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || status=1; done; exit $$status

PRESENT_PORT ?= 8866
PRESENT_ARGS ?=
VOILA_FLAGS := --theme=light --show_tracebacks=True --strip_sources=True
PRESENT_STAMP := $(VENV)/.chapter13-present-installed
BROWSER_STAMP := $(VENV)/.chapter13-browser-installed

$(PRESENT_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[present]"
	@touch $(PRESENT_STAMP)

$(BROWSER_STAMP): $(PRESENT_STAMP)
	$(PY) -m pip install -q -e ".[browser,present]"
	@touch $(BROWSER_STAMP)

present: $(PRESENT_STAMP)
	$(VENV)/bin/voila presenter $(VOILA_FLAGS) --port=$(PRESENT_PORT) $(PRESENT_ARGS)

# Not part of `make test`, which a student runs without a browser: `make browser` without Debian's
# chromium skips with a message saying what to install. CI (.ci/run) installs chromium and runs it with
# CH13_BROWSER_REQUIRED=1, so that there a missing browser fails. 3 minutes on an idle 2-core CPU, 4 to 6 when busy.
browser: $(BROWSER_STAMP)
	$(PY) -m pytest tests/browser -q -p no:cacheprovider --durations=5

clean-venv:
	rm -rf $(VENV)
