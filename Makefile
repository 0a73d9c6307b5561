# Two commands on a fresh machine: `make lab` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.chapter13-installed
PORT ?= 8888
LAB_ARGS ?=
# Jupyter refuses to run as root (containers, CI) unless told to.
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root,)
# NO_INSTALL=1 uses $(VENV) as it is: no pip, no network, whatever the install stamps say (the unit tests
# run `make lab NO_INSTALL=1`, so that `make test` never reinstalls from inside its own tests).
NO_INSTALL ?=
SKIP_INSTALL := $(filter 1,$(NO_INSTALL))
SETUP := $(if $(SKIP_INSTALL),venv-exists,$(STAMP))

.PHONY: lab test unit notebooks lint checkpoints bench browser present site clean-venv help venv-exists

help:
	@echo "make lab          create .venv if missing, install, open JupyterLab on notebooks/"
	@echo "make test         create .venv if missing, install, run ruff, unit tests and every notebook (quick mode)"
	@echo "make checkpoints  retrain every shipped checkpoint (slow; see data/README.md)"
	@echo "make bench        run the benchmark scripts and print their tables"
	@echo "make present      serve presenter/ (one page per section) code-hidden with Voila, offline"
	@echo "make browser      every notebook and presenter page in headless Chromium (skipped without it)"
	@echo "make site         the rendered companion in _site/: every notebook run at full size, as HTML"
	@echo "NO_INSTALL=1      with any target: use .venv as it is, never pip (no network)"

# constraints.txt pins every package to the versions this repository is tested with, so that each fresh
# .venv resolves the same set (regenerate it after an upgrade: see its header).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e ".[lab,test,dev]"
	@touch $(STAMP)

venv-exists:
	@test -x $(PY) || { echo "NO_INSTALL=1 needs an installed $(VENV); run 'make test' once without it" >&2; exit 1; }

lab: $(SETUP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(ROOT_ARGS) $(LAB_ARGS)

lint: $(SETUP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

unit: $(SETUP)
	$(PY) -m pytest tests -q --ignore=tests/browser

notebooks: $(SETUP)
	CH13_QUICK=1 MPLBACKEND=Agg $(PY) -m pytest notebooks -q -p no:cacheprovider \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=600

test: lint unit notebooks

checkpoints: $(SETUP)
	$(PY) -m chapter13.train --all

bench: $(SETUP)
	@status=0; for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || status=1; done; exit $$status

PRESENT_PORT ?= 8866
PRESENT_ARGS ?=
# Kernel culling: every page view (any GET, even one that never opens the page's websocket) starts a
# kernel; one with no open page is shut down after 120 s idle, checked every 30 s. A page open in a
# browser keeps its kernel however long it sits idle (cull_connected=False), and a busy one is never cut.
VOILA_FLAGS := --theme=light --show_tracebacks=True --strip_sources=True --MappingKernelManager.cull_idle_timeout=120 --MappingKernelManager.cull_interval=30 --MappingKernelManager.cull_connected=False --MappingKernelManager.cull_busy=False
PRESENT_STAMP := $(VENV)/.chapter13-present-installed
BROWSER_STAMP := $(VENV)/.chapter13-browser-installed

$(PRESENT_STAMP): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[present]"
	@touch $(PRESENT_STAMP)

$(BROWSER_STAMP): $(PRESENT_STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[browser,present]"
	@touch $(BROWSER_STAMP)

present: $(if $(SKIP_INSTALL),venv-exists,$(PRESENT_STAMP))
	$(VENV)/bin/voila presenter $(VOILA_FLAGS) --port=$(PRESENT_PORT) $(PRESENT_ARGS)

# Not part of `make test`, which a student runs without a browser: `make browser` without Debian's
# chromium skips with a message saying what to install. CI (.ci/run) installs chromium and runs it with
# CH13_BROWSER_REQUIRED=1, so that there a missing browser fails. 3 minutes on an idle 2-core CPU, 4 to 6 when busy.
browser: $(if $(SKIP_INSTALL),venv-exists,$(BROWSER_STAMP))
	$(PY) -m pytest tests/browser -q -p no:cacheprovider --durations=5

# The rendered companion: every notebook executed at full size (about 12 minutes on 2 cores), as HTML with
# its figures, plus the errata, timings, glossary and "if it is slow" pages; offline, into _site/.
# SITE_ARGS=--quick builds it in quick mode (what tests/test_site.py checks).
SITE_ARGS ?=
site: $(SETUP)
	$(PY) site/build.py $(SITE_ARGS)

clean-venv:
	rm -rf $(VENV)
