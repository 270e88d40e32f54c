# tripost: every target sets itself up (virtual environment and installs) on first use.
# `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install install-sweep run smoke gold expert-server paper-table test test-all lint clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0  # the CPU build; an unpinned torch pulls GBs of CUDA
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install tripost with its pinned dependencies

SWEEP_STAMP := $(VENV)/.installed-sweep
$(SWEEP_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[dev,sweep]"
	@touch $(SWEEP_STAMP)

install-sweep: $(SWEEP_STAMP) ## Also install the Hydra joblib (local) and submitit (SLURM) launchers

run: install ## The main job on the embedded default (tiny model, scripted expert, CPU); ARGS="task=word_sort" adds overrides
	$(PY) run.py $(ARGS)

smoke: install ## One tiny pass of everything in seconds (debug=fast)
	$(PY) run.py debug=fast $(ARGS)

gold: install ## Evaluate the gold policy on every task: must print 100.0 everywhere
	$(PY) run.py -m model=gold task=multistep_arithmetic,word_sort,date_understanding,logical_deduction logger=none $(ARGS)

expert-server: install ## Our OpenAI-compatible server (scripted expert) for verifier=openai; ARGS="--task word_sort --port 8000"
	$(PY) -m tripost.experts.server $(if $(ARGS),$(ARGS),--task word_sort --port 8000)

# paper-table: every experiment x seed as one Hydra multirun, 2 jobs at once with 1 thread each.
PT_EXPERIMENTS ?= tiny,tiny_auto,tiny_w1,tiny_lmsi,tiny_prompting
PT_SEEDS ?= 1,2,3
ifndef PT_DIR
PT_DIR := outputs/paper_table/$(shell date +%Y-%m-%d_%H-%M-%S)
endif
paper-table: install-sweep ## All rows x 3 seeds on the tiny default (joblib multirun), then aggregate.md and PNG plots in PT_DIR
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) run.py -m experiment=$(PT_EXPERIMENTS) seed=$(PT_SEEDS) \
	  hydra/launcher=joblib hydra.launcher.n_jobs=2 hydra.sweep.dir=$(PT_DIR) $(ARGS)
	$(PY) scripts/aggregate.py $(PT_DIR)

TEST_WORKERS ?= 2
test: install ## The test suite, slow tests excluded, in TEST_WORKERS processes (what CI runs)
	$(PY) -m pytest -m "not slow" -n $(TEST_WORKERS) $(ARGS)

test-all: install ## Every test, slow ones included
	$(PY) -m pytest -n $(TEST_WORKERS) $(ARGS)

lint: install ## flake8 over the code
	$(PY) -m flake8 tripost tests scripts run.py

clean: ## Remove outputs/ and caches (keeps .venv)
	rm -rf outputs multirun .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
