"""make bench's cluster part: a 2-worker cluster on this machine against one process.

For each cluster mode (legacy asynchronous, legacy --sync_replicas, modern)
hw04 runs as `make <port>-hw04-cluster` and as `make <port>-hw04`, the same
seed and epochs, alternating, each timed as bench.run_target times a target:
the chief's training phase, the whole process (launcher and every task),
the peak memory of the largest process.

A step's communication time is estimated as a cluster step's time less one
process's step time on the same per-worker batch (hw04 with --batch_size 50
for the synchronous modes, whose workers take half of each batch of 100;
the batch of 100 for the asynchronous one, whose workers each take whole
batches). On a 2-core machine the two workers also share the cores, so the
estimate holds that contention as well: it is an upper bound.

What a step moves, from the model's size: with parameter servers each
worker pulls every parameter and pushes every gradient; an all-reduce of K
workers sends and receives (K - 1) / K of the gradients per worker (ring).
"""

import statistics
import sys

from common import hparams as hp

MODES = {"legacy async": ("legacy", ()),
         "legacy sync": ("legacy", ("--sync_replicas",)),
         "modern": ("modern", ())}
WORKERS = 2
EPOCHS = 5  # enough for steady steps; 15 would triple the cluster part's time


def parameter_count(hidden_units=hp.SCRIPTS["hw04"].hidden_units) -> int:
  """Weights and biases of the MLP (hw04: 269,450)."""
  sizes = hp.layer_sizes(hidden_units)
  return sum(n * m + m for n, m in zip(sizes[:-1], sizes[1:]))


def megabytes_per_step(mode: str) -> float:
  """float32 megabytes one worker sends, and receives, per step."""
  values = parameter_count()
  if mode.startswith("legacy"):  # pull the parameters, push the gradients
    return values * 4 / 1e6
  return values * 4 * (WORKERS - 1) / WORKERS / 1e6


def _make(target: str, seed: int, flags=()) -> tuple:
  args = " ".join([f"--seed={seed}", f"--training_epochs={EPOCHS}", *flags])
  return ["make", "-s", target, f"ARGS={args}"]


def run_all(run_command, runs: int) -> dict:
  """Every cluster mode and its single-process references, `runs` times.

  run_command(argv, name) -> one run's dict (bench.run_target's fields).
  Returns {name: [run, ...]}.
  """
  results = {}
  for seed in range(1, runs + 1):
    for mode, (port, flags) in MODES.items():
      for name, argv in ((f"{mode} cluster", _make(f"{port}-hw04-cluster", seed, flags)),
                         (f"{port} one process", _make(f"{port}-hw04", seed)),
                         (f"{port} one process, batch 50",
                          _make(f"{port}-hw04", seed, ("--batch_size=50",)))):
        if name in results and len(results[name]) == seed:
          continue  # a port's references serve both of its modes
        run = run_command(argv, name)
        results.setdefault(name, []).append(run)
        print(f"run {seed}/{runs} {name}: train {run['train_s']:.1f} s, "
              f"process {run['process_s']:.1f} s", file=sys.stderr)
  return results


def summarise(results: dict) -> dict:
  """Per mode: steps/s, times, memory, its ratios to one process, communication."""
  steps = EPOCHS * (hp.TRAIN_EXAMPLES // hp.HParams.batch_size)  # batches of 100
  def median(name, key):
    return statistics.median(r[key] for r in results[name])
  table = {}
  for mode, (port, flags) in MODES.items():
    cluster, single = f"{mode} cluster", f"{port} one process"
    train_s = median(cluster, "train_s")
    if mode.endswith("async"):  # each worker steps through its own batches of 100
      worker_steps, reference, reference_steps = steps // WORKERS, single, steps
    else:  # global steps, each worker on half of every batch
      worker_steps = steps
      reference, reference_steps = f"{port} one process, batch 50", 2 * steps
    step_s = train_s / worker_steps
    table[mode] = {
        "epochs": EPOCHS, "workers": WORKERS,
        "train_s": train_s,
        "steps_per_s": steps / train_s,
        "single_steps_per_s": steps / median(single, "train_s"),
        "process_s": median(cluster, "process_s"),
        "single_process_s": median(single, "process_s"),
        "process_over_single": statistics.median(
            c["process_s"] / s["process_s"]
            for c, s in zip(results[cluster], results[single])),
        "peak_rss_mb_per_process": max(r["peak_rss_mb"] for r in results[cluster]),
        "step_ms": 1e3 * step_s,
        "communication_ms_per_step": 1e3 * (
            step_s - median(reference, "train_s") / reference_steps),
        "megabytes_each_way_per_step": megabytes_per_step(mode),
        "accuracies": [r["accuracy"] for r in results[cluster]],
    }
  return table


def print_table(table: dict) -> None:
  print(f"\n{WORKERS}-worker hw04 cluster vs one process, {EPOCHS} epochs "
        "(steps: batches of 100 across the cluster)")
  print(f"{'mode':<13} {'steps/s':>8} {'one proc':>9} {'process s':>10}"
        f" {'one proc':>9} {'x':>5} {'peak MiB':>9} {'step ms':>8}"
        f" {'comm ms':>8} {'MB/step':>8}")
  for mode, e in table.items():
    print(f"{mode:<13} {e['steps_per_s']:>8.0f} {e['single_steps_per_s']:>9.0f}"
          f" {e['process_s']:>10.1f} {e['single_process_s']:>9.1f}"
          f" {e['process_over_single']:>5.2f} {e['peak_rss_mb_per_process']:>9.0f}"
          f" {e['step_ms']:>8.2f} {e['communication_ms_per_step']:>8.2f}"
          f" {e['megabytes_each_way_per_step']:>8.2f}")
