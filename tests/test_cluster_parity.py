"""Cluster outcome parity: hw04 on 2 workers reaches one process's accuracy.

Part of `make parity`; `make parity-cluster` runs it alone. Full data, 15 epochs, seeds 1-3, in each
mode: legacy asynchronous, legacy synchronous (--sync_replicas), modern
(MultiWorkerMirroredStrategy). Each mode's mean test accuracy must be within
0.5 percentage points of the single-process mean, 96.4% (README, Results:
legacy 96.41%, modern 96.26% over the same seeds). The runs are the
`make <port>-hw04-cluster` launcher's, one cluster at a time (a cluster
already keeps every core busy).

The same environment variables as test_outcome_parity.py reduce the
configuration for a dry run of the plumbing (the check then means nothing):
PARITY_EPOCHS, PARITY_TRAIN_LIMIT, PARITY_SEEDS.
"""

import os
import statistics
import subprocess
import sys

import pytest

import helpers

pytestmark = [pytest.mark.parity, pytest.mark.cluster_parity]

SEEDS = (1, 2, 3)
SINGLE_PROCESS_MEAN = 0.964
MAX_GAP = 0.005
MODES = {"legacy async": ("legacy", ()),
         "legacy sync": ("legacy", ("--sync_replicas",)),
         "modern": ("modern", ())}
RUN_TIMEOUT = 1800  # one 15-epoch cluster run on a 2-core machine: minutes


def _env_int(name):
  value = os.environ.get(name)
  return int(value) if value else None


def cluster_accuracy(port, flags, seed, tmp_path):
  args = [f"--seed={seed}", *flags]
  for name, flag in (("PARITY_EPOCHS", "training_epochs"),
                     ("PARITY_TRAIN_LIMIT", "train_limit")):
    if _env_int(name):
      args.append(f"--{flag}={_env_int(name)}")
  result = subprocess.run(
      [sys.executable, "-m", f"{port}.cluster", "--script=hw04",
       f"--ps={1 if port == 'legacy' else 0}",
       f"--task_logs={tmp_path / f'{port}{len(flags)}-{seed}'}", "--", *args],
      cwd=helpers.REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
  # The chief's last lines say how far the cluster got before it failed.
  assert result.returncode == 0, (
      result.stderr + "\nits last lines:\n" + "\n".join(result.stdout.splitlines()[-3:]))
  return float(helpers.summary_lines(result.stdout)[-1].split()[-1])


@pytest.mark.parametrize("mode", list(MODES))
def test_hw04_cluster_accuracy_matches_one_process(mode, tmp_path):
  port, flags = MODES[mode]
  seeds = SEEDS[:_env_int("PARITY_SEEDS") or len(SEEDS)]
  accuracies = [cluster_accuracy(port, flags, seed, tmp_path) for seed in seeds]
  mean = statistics.mean(accuracies)
  print(f"\nhw04 cluster, {mode}, 2 workers: "
        + ", ".join(f"seed {s} {a:.4f}" for s, a in zip(seeds, accuracies))
        + f"; mean {mean:.4f} (one process: {SINGLE_PROCESS_MEAN})", flush=True)
  assert abs(mean - SINGLE_PROCESS_MEAN) <= MAX_GAP, accuracies
