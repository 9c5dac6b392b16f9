# Every target that needs Python builds .venv from the pinned requirements
# first, and rebuilds it whenever a requirements file changes. The report's
# packages (matplotlib, scipy) live apart, in .venv-report, for `make report`,
# `make parity` and the test modules in REPORT_TESTS: installed beside
# TensorFlow, they are imported by every `import tensorflow` (Keras'
# visualization modules try matplotlib.pyplot), about 0.7 s at every start.
#   make legacy-hw05 ARGS="--seed 3"     extra flags pass through ARGS

# No "Entering directory" lines when make runs inside make (tests, CI).
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS := requirements.txt requirements-dev.txt
STAMP := $(VENV)/.requirements-installed
# .venv-report is .venv plus requirements-report.txt: a .pth file puts .venv's
# site-packages on its path, so TensorFlow is not installed twice.
REPORT_VENV := .venv-report
REPORT_PY := $(REPORT_VENV)/bin/python
REPORT_REQUIREMENTS := requirements-report.txt
REPORT_STAMP := $(REPORT_VENV)/.requirements-installed
# The test modules that import the report's packages, or run or import code
# that does; they run with $(REPORT_PY), the others with $(PY).
# tests/test_environment.py checks that this list names every such module.
REPORT_TESTS := tests/test_bad_input.py tests/test_experiments.py \
  tests/test_machine.py tests/test_outcome_parity.py tests/test_parity.py
ARGS ?=
WORKERS ?= 2
PS ?= 1
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv venv-report legacy-hw04 legacy-hw05 modern-hw04 modern-hw05 \
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

# Made with .venv's python, so the two are the same Python version; pip sees
# .venv's packages through the .pth file and installs only what they lack.
$(REPORT_STAMP): $(STAMP) $(REQUIREMENTS) $(REPORT_REQUIREMENTS)
	rm -rf $(REPORT_VENV)
	$(PY) -m venv $(REPORT_VENV)
	$(PY) -c "import sysconfig; print(sysconfig.get_path('purelib'))" \
	  > "$$($(REPORT_PY) -c "import sysconfig; print(sysconfig.get_path('purelib'))")/venv.pth"
	$(REPORT_PY) -m pip install --quiet --disable-pip-version-check \
	  -r $(REPORT_REQUIREMENTS)
	touch $@

venv-report: $(REPORT_STAMP)  ## Create .venv-report: .venv plus the report's packages.

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

# The tests in two runs: REPORT_TESTS with $(REPORT_PY), the others with
# $(PY). The second runs even if the first failed; the target fails if either
# did. A run that PYTEST_ARGS (say -k) leaves without tests (status 5) is no
# failure.
define run_tests
status=0; \
$(PY) -m pytest -m $(1) $(addprefix --ignore=,$(REPORT_TESTS)) $(PYTEST_ARGS) \
  || { s=$$?; [ $$s -eq 5 ] || status=$$s; }; \
$(REPORT_PY) -m pytest -m $(1) $(REPORT_TESTS) $(PYTEST_ARGS) \
  || { s=$$?; [ $$s -eq 5 ] || status=$$s; }; \
exit $$status
endef

test: $(STAMP) $(REPORT_STAMP)  ## All tests, full-data training runs included (not parity).
	$(call run_tests,"not parity")

test-fast: $(STAMP) $(REPORT_STAMP)  ## The tests without the slow full-data runs.
	$(call run_tests,"not slow and not parity")

# The parity suite needs scipy, and pytest imports every test module to find
# the marked tests: both run with $(REPORT_PY).
parity: $(REPORT_STAMP)  ## Statistical parity of the two ports over many seeds, cluster modes too (minutes).
	$(REPORT_PY) -m pytest -m parity -s $(PYTEST_ARGS)

parity-cluster: $(REPORT_STAMP)  ## Only make parity's cluster part: hw04 in each cluster mode (9 cluster runs).
	$(REPORT_PY) -m pytest -m cluster_parity -s $(PYTEST_ARGS)

bench: $(STAMP)  ## Speed and memory of both ports vs the FLOP floor (minutes).
	$(PY) -m benchmarks.bench --out benchmarks/results.json $(ARGS)

report: $(REPORT_STAMP)  ## The reconstruction study + conclusion test into report/ (about an hour; resumes).
	$(REPORT_PY) -m experiments.study --out report --kernels=portable $(ARGS)

clean:  ## Remove .venv, .venv-report and caches (downloaded MNIST_data/ stays).
	rm -rf $(VENV) $(REPORT_VENV) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
