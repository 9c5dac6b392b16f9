"""Outcome parity: over fixed seeds, both ports reach comparable accuracy.

Trains each port as `python -m legacy.hw05 --seed 3` does (common/cli.py:
the default hyper-parameters of common.hparams.SCRIPTS, full data, the
port's run_training) and compares the test accuracies. Training is chaotic
(docs/original-scripts.md, facts measured along the way): runs of the two
ports from the same seed share nothing but the seed, so only distributions
over seeds can be compared.

  hw04, seeds 1-3 per port: every run at least 95.5%, and the two ports'
    mean accuracies within 1 percentage point.
  hw05, seeds 1-10 per port: a run below common.hparams.COLLAPSE_THRESHOLD
    has collapsed (about 4 in 10 do, as in the seed's report). Collapse
    counts (Fisher's exact test) and accuracy distributions (Mann-Whitney
    U, two-sided) must not differ significantly (p > 0.05).

  migrated half-runs, hw04 seeds 1-3 and hw05 seeds 1-5: 5 epochs in
    legacy, carried over to modern with the optimizer state
    (migration/optimizer_state.py), 10 more there. hw04: every run within
    0.5 points of 96.4% (the single-port mean of docs/parity.md's tables);
    hw05: collapse counts and accuracies not significantly different from
    the single-port runs above (both ports pooled; same tests, p > 0.05).

The seeds were fixed before any result was seen; never change them to make
a run pass. Only `make parity` runs this module (pytest -m parity -s), and
prints the table of all runs.

Speed: the runs go to worker processes, one per core, each limited to one
TensorFlow intra-op thread (experiments/runner.py says why), with portable
kernels (--kernels=portable, common/console.py): a seed's run here is the
one `python -m legacy.hw05 --seed 3 --kernels=portable` prints, on an AVX2
machine and on an AVX-512 one alike (docs/reproducibility.md), and the
tables in docs/parity.md repeat digit for digit. A run's result depends on
the thread count too (float32 sums split differently, then chaos).

Environment variables reduce the configuration, only to try the plumbing
quickly (the statistics then mean nothing); unset, the real one runs:
  PARITY_EPOCHS       training epochs per run (default: the script's, 15)
  PARITY_TRAIN_LIMIT  first N training examples only (default: all 55,000)
  PARITY_SEEDS        only the first N seeds of each list below
  PARITY_WORKERS      runs at a time (default: one per available core)
"""

import concurrent.futures
import os
import statistics

import pytest
from scipy import stats

from common import hparams as hp
from experiments import runner

pytestmark = pytest.mark.parity

PORTS = ("legacy", "modern")
HW04_SEEDS = (1, 2, 3)
HW05_SEEDS = tuple(range(1, 11))
HW05_MIGRATED_SEEDS = tuple(range(1, 6))
MIGRATED_AFTER_EPOCHS = 5  # of 15: legacy 5, then modern 10
HW04_MIGRATED_TARGET = 0.964  # legacy's 0.9641, modern's 0.9626 (docs/parity.md)
HW04_MIGRATED_TOLERANCE = 0.005
HW04_MIN_ACCURACY = 0.955
HW04_MAX_MEAN_GAP = 0.01
ALPHA = 0.05


def _env_int(name):
  value = os.environ.get(name)
  return int(value) if value else None


def describe_configuration(script):
  epochs = _env_int("PARITY_EPOCHS") or hp.SCRIPTS[script].training_epochs
  examples = _env_int("PARITY_TRAIN_LIMIT") or 55000
  reduced = any(_env_int(name) for name in
                ("PARITY_EPOCHS", "PARITY_TRAIN_LIMIT", "PARITY_SEEDS"))
  return (f"{epochs} epoch{'s' if epochs != 1 else ''}, "
          f"{examples:,} training examples"
          + (" (REDUCED: a dry run, not the parity check)" if reduced else ""))


def worker_count():
  return _env_int("PARITY_WORKERS") or runner.cpu_count()


@pytest.fixture(scope="module")
def pool():
  """One pool for both tests: the workers import TensorFlow once."""
  # Portable kernels, as the committed tables were run (docs/parity.md): on
  # an AVX2 or an AVX-512 machine, the same numbers digit for digit.
  with runner.worker_pool(worker_count(), kernels="portable") as executor:
    yield executor


_single_port_runs = {}  # script -> run_both_ports' result, once a session


def run_both_ports(pool, script, seeds, data_dir):
  """{port: [accuracy per seed]} from whole training runs, printing progress.

  Run once a session per script: the migrated runs compare with them too.
  """
  if script not in _single_port_runs:
    _single_port_runs[script] = _run_both_ports(pool, script, seeds, data_dir)
  return _single_port_runs[script]


def _run_both_ports(pool, script, seeds, data_dir):
  seeds = seeds[:_env_int("PARITY_SEEDS") or len(seeds)]
  scale = runner.Scale(training_epochs=_env_int("PARITY_EPOCHS"),
                       train_limit=_env_int("PARITY_TRAIN_LIMIT"))
  # The script's defaults, as `python -m PORT.SCRIPT --seed N` trains them.
  config = runner.Config(f"{script} as shipped", script)
  # Modern runs are the longer ones: started first, they leave no long
  # run alone at the end.
  runs = config.runs(list(reversed(PORTS)), seeds, scale)
  print(f"\n{script}: {len(runs)} runs, {worker_count()} at a time; "
        f"{describe_configuration(script)}", flush=True)
  futures = [pool.submit(runner.train_once, run, data_dir) for run in runs]
  records = {}
  for future in concurrent.futures.as_completed(futures):
    record = future.result()
    assert record["error"] is None, record["error"]  # no run may diverge
    print(f"  {script} {record['port']} seed {record['hparams']['seed']}: "
          f"{record['accuracy']:.4f} ({record['seconds']:.0f} s)", flush=True)
    records[record["key"]] = record
  return seeds, {port: [r["accuracy"] for r in config.records(port, seeds, records, scale)]
                 for port in PORTS}


def print_table(title, rows):
  """One line a row: a label, then one column a port."""
  print(f"\n{title:<24}{PORTS[0]:<18}{PORTS[1]}")
  for label, *cells in rows:
    print(f"  {label:<22}" + "".join(f"{cell:<18}" for cell in cells).rstrip())


def test_hw04_outcome_parity(pool, data_dir):
  seeds, accuracy = run_both_ports(pool, "hw04", HW04_SEEDS, data_dir)
  means = {port: statistics.mean(accuracy[port]) for port in PORTS}
  print_table("hw04", [(f"seed {seed}", *(f"{accuracy[port][i]:.4f}" for port in PORTS))
                       for i, seed in enumerate(seeds)]
              + [("mean", *(f"{means[port]:.4f}" for port in PORTS))])

  for port in PORTS:
    for seed, value in zip(seeds, accuracy[port]):
      assert value >= HW04_MIN_ACCURACY, f"{port} hw04 seed {seed}: {value}"
  assert abs(means["legacy"] - means["modern"]) <= HW04_MAX_MEAN_GAP, means


def test_hw05_outcome_parity(pool, data_dir):
  seeds, accuracy = run_both_ports(pool, "hw05", HW05_SEEDS, data_dir)
  threshold = hp.COLLAPSE_THRESHOLD
  collapsed = {port: [a < threshold for a in accuracy[port]] for port in PORTS}
  counts = {port: sum(collapsed[port]) for port in PORTS}
  good_means = {}
  for port in PORTS:
    good = [a for a, c in zip(accuracy[port], collapsed[port]) if not c]
    good_means[port] = f"{statistics.mean(good):.4f}" if good else "-"
  def cell(port, i):
    return f"{accuracy[port][i]:.4f}" + (" collapsed" if collapsed[port][i] else "")
  print_table("hw05", [(f"seed {seed}", *(cell(port, i) for port in PORTS))
                       for i, seed in enumerate(seeds)]
              + [(f"collapsed (< {threshold})",
                  *(f"{counts[port]} of {len(seeds)}" for port in PORTS)),
                 ("mean, not collapsed", *(good_means[port] for port in PORTS))])

  table = [[counts[port], len(seeds) - counts[port]] for port in PORTS]
  fisher_p = stats.fisher_exact(table).pvalue
  mannwhitney_p = stats.mannwhitneyu(accuracy["legacy"], accuracy["modern"],
                                     alternative="two-sided").pvalue
  print(f"  Fisher's exact test, collapse counts: p = {fisher_p:.3f}")
  print(f"  Mann-Whitney U, accuracies (two-sided): p = {mannwhitney_p:.3f}")

  assert fisher_p > ALPHA, (counts, fisher_p)
  assert mannwhitney_p > ALPHA, (accuracy, mannwhitney_p)


def run_migrated(pool, script, seeds, data_dir):
  """[accuracy per seed] of migrated half-runs (legacy, then modern)."""
  seeds = seeds[:_env_int("PARITY_SEEDS") or len(seeds)]
  scale = runner.Scale(training_epochs=_env_int("PARITY_EPOCHS"),
                       train_limit=_env_int("PARITY_TRAIN_LIMIT"))
  runs = runner.Config(f"{script} as shipped", script).runs(["legacy"], seeds, scale)
  switch = min(MIGRATED_AFTER_EPOCHS, runs[0].hparams.training_epochs - 1)
  print(f"\n{script} migrated after epoch {switch}: {len(runs)} runs; "
        f"{describe_configuration(script)}", flush=True)
  futures = {pool.submit(runner.train_migrated, run, data_dir, switch): run
             for run in runs}
  accuracy = {}
  for future in concurrent.futures.as_completed(futures):
    record = future.result()
    assert record["error"] is None, record["error"]
    accuracy[futures[future].hparams.seed] = record["accuracy"]
    print(f"  {script} {record['port']} seed {futures[future].hparams.seed}: "
          f"{record['accuracy']:.4f} ({record['seconds']:.0f} s)", flush=True)
  return seeds, [accuracy[seed] for seed in seeds]


def test_migrated_hw04_half_runs_end_where_single_port_runs_do(pool, data_dir):
  seeds, accuracy = run_migrated(pool, "hw04", HW04_SEEDS, data_dir)
  print_table("hw04 migrated", [(f"seed {seed}", f"{a:.4f}", "")
                                for seed, a in zip(seeds, accuracy)])
  for seed, value in zip(seeds, accuracy):
    assert abs(value - HW04_MIGRATED_TARGET) <= HW04_MIGRATED_TOLERANCE, (seed, value)


def test_migrated_hw05_half_runs_end_where_single_port_runs_do(pool, data_dir):
  seeds, migrated = run_migrated(pool, "hw05", HW05_MIGRATED_SEEDS, data_dir)
  _, single = run_both_ports(pool, "hw05", HW05_SEEDS, data_dir)
  single = single["legacy"] + single["modern"]
  threshold = hp.COLLAPSE_THRESHOLD
  counts = [sum(a < threshold for a in runs) for runs in (migrated, single)]
  print_table("hw05 migrated", [(f"seed {seed}", f"{a:.4f}" + (
      " collapsed" if a < threshold else ""), "") for seed, a in zip(seeds, migrated)])
  fisher_p = stats.fisher_exact([[counts[0], len(migrated) - counts[0]],
                                 [counts[1], len(single) - counts[1]]]).pvalue
  mannwhitney_p = stats.mannwhitneyu(migrated, single,
                                     alternative="two-sided").pvalue
  print(f"  collapsed: {counts[0]} of {len(migrated)} migrated, {counts[1]} of "
        f"{len(single)} single-port; Fisher p = {fisher_p:.3f}, "
        f"Mann-Whitney U p = {mannwhitney_p:.3f}")
  assert fisher_p > ALPHA, (counts, fisher_p)
  assert mannwhitney_p > ALPHA, (migrated, single, mannwhitney_p)
