# Two commands on a fresh machine: `make lab` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.chapter13-installed
PORT ?= 8888
LAB_ARGS ?=
# Jupyter refuses to run as root (containers, CI) unless told to.
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test unit notebooks lint checkpoints bench clean-venv help

help:
	@echo "make lab          create .venv if missing, install, open JupyterLab on notebooks/"
	@echo "make test         create .venv if missing, install, run ruff, unit tests and every notebook (quick mode)"
	@echo "make checkpoints  retrain every shipped checkpoint (slow; see data/README.md)"
	@echo "make bench        run the benchmark scripts and print their tables"

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
	$(PY) -m pytest tests -q

notebooks: $(STAMP)
	CH13_QUICK=1 MPLBACKEND=Agg $(PY) -m pytest notebooks -q -p no:cacheprovider \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=600

test: lint unit notebooks

checkpoints: $(STAMP)
	$(PY) -m chapter13.train --all

bench: $(STAMP)
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean-venv:
	rm -rf $(VENV)
