# Every target that needs Python builds .venv from the pinned requirements
# first, and rebuilds it whenever a requirements file changes.
#   make legacy-hw05 ARGS="--seed 3"     extra flags pass through ARGS

# No "Entering directory" lines when make runs inside make (tests, CI).
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS := requirements.txt requirements-dev.txt
STAMP := $(VENV)/.requirements-installed
ARGS ?=
WORKERS ?= 2
PS ?= 1
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv legacy-hw04 legacy-hw05 modern-hw04 modern-hw05 \
  legacy-hw04-cluster legacy-hw05-cluster modern-hw04-cluster modern-hw05-cluster \
  upgrade test test-fast parity parity-cluster bench report clean

help:  ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'
	@echo '  Pass flags with ARGS, e.g. make legacy-hw05 ARGS="--seed 3"'

$(STAMP): $(REQUIREMENTS)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check \
	  $(foreach r,$(REQUIREMENTS),-r $(r))
	touch $@

venv: $(STAMP)  ## Create .venv from the pinned requirements.

legacy-hw04: $(STAMP)  ## DL_HW_04week.py in TF1 graph mode (tf.compat.v1).
	@$(PY) -m legacy.hw04 $(ARGS)

legacy-hw05: $(STAMP)  ## DL_HW_05week.py in TF1 graph mode (tf.compat.v1).
	@$(PY) -m legacy.hw05 $(ARGS)

modern-hw04: $(STAMP)  ## DL_HW_04week.py in TF2 Keras.
	@$(PY) -m modern.hw04 $(ARGS)

modern-hw05: $(STAMP)  ## DL_HW_05week.py in TF2 Keras.
	@$(PY) -m modern.hw05 $(ARGS)

# A cluster on 127.0.0.1: WORKERS workers (and PS parameter servers for
# legacy), ARGS passed to every task; --sync_replicas makes legacy synchronous.
legacy-hw04-cluster: $(STAMP)  ## legacy-hw04 on a local cluster (WORKERS=2 PS=1).
	@$(PY) -m legacy.cluster --script=hw04 --workers=$(WORKERS) --ps=$(PS) -- $(ARGS)

legacy-hw05-cluster: $(STAMP)  ## legacy-hw05 on a local cluster (WORKERS=2 PS=1).
	@$(PY) -m legacy.cluster --script=hw05 --workers=$(WORKERS) --ps=$(PS) -- $(ARGS)

modern-hw04-cluster: $(STAMP)  ## modern-hw04 on a local cluster (WORKERS=2).
	@$(PY) -m modern.cluster --script=hw04 --workers=$(WORKERS) --ps=0 -- $(ARGS)

modern-hw05-cluster: $(STAMP)  ## modern-hw05 on a local cluster (WORKERS=2).
	@$(PY) -m modern.cluster --script=hw05 --workers=$(WORKERS) --ps=0 -- $(ARGS)

upgrade: $(STAMP)  ## tf_upgrade_v2 on original/ into upgraded/, hand edits, then run both.
	@$(PY) -m migration.upgrade --out_dir upgraded --run $(ARGS)

test: $(STAMP)  ## All tests, full-data training runs included (not parity).
	$(PY) -m pytest -m "not parity" $(PYTEST_ARGS)

test-fast: $(STAMP)  ## The tests without the slow full-data runs.
	$(PY) -m pytest -m "not slow and not parity" $(PYTEST_ARGS)

parity: $(STAMP)  ## Statistical parity of the two ports over many seeds, cluster modes too (minutes).
	$(PY) -m pytest -m parity -s $(PYTEST_ARGS)

parity-cluster: $(STAMP)  ## Only make parity's cluster part: hw04 in each cluster mode (9 cluster runs).
	$(PY) -m pytest -m cluster_parity -s $(PYTEST_ARGS)

bench: $(STAMP)  ## Speed and memory of both ports vs the FLOP floor (minutes).
	$(PY) -m benchmarks.bench --out benchmarks/results.json $(ARGS)

report: $(STAMP)  ## The reconstruction study + conclusion test into report/ (about an hour; resumes).
	$(PY) -m experiments.study --out report --kernels=portable $(ARGS)

clean:  ## Remove .venv and caches (downloaded MNIST_data/ stays).
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
