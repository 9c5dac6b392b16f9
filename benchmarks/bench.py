"""make bench: speed and memory of both ports against the FLOP floor.

For hw04 and hw05 in legacy and modern, in one run on this machine:
  - training time of the full 15 epochs (median, min and max over --runs
    runs) and steps per second;
  - the whole-process time of `make <port>-<script>` (import, data, train,
    evaluate) and its peak resident memory;
  - the machine's float32 matmul throughput with TF, and each port's
    training time as a multiple of the FLOP floor: the model's forward +
    backward FLOPs for the 15 epochs divided by that throughput.
Every measured run is the real make target, timed from outside (wall clock,
peak RSS from wait4) and from inside (phase times the entry point writes
when $MNIST_PORT_TIMINGS names a file). Legacy and modern runs alternate and
their ratio is taken pair by pair, since the machine's speed drifts. Prints
one table and writes it as JSON (--out), so numbers compare between commits.

Then hw04 on a 2-worker cluster in each mode against one process
(benchmarks/clusters.py; --cluster_runs 0 leaves it out).

With --jax_python (a Python that has jax), a peer to set the pace,
benchmarks/jax_peer.py (the same MLP written in JAX), runs in turn with the
ports and is timed the same way; modern's time over the peer's is taken pair
by pair too.

  python -m benchmarks.bench [--runs 3] [--out bench.json] [--jax_python P]
                            [--cluster_runs 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import clusters
from common import console
from common import hparams as hp
from common import machine

PORTS = ("legacy", "modern")
PEER = "jax"
SCRIPTS = ("hw04", "hw05")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flops_per_example(hidden_units=hp.HParams.hidden_units) -> int:
  """Forward + backward FLOPs (2 per multiply-add) of one training example.

  Forward: one matmul per layer. Backward: every layer's weight gradient,
  and the input gradient of every layer but the first (nothing flows back
  into the images). Elementwise work is left out: the floor is the matmuls.
  """
  sizes = (hp.IMAGE_PIXELS, *hidden_units, hp.NUM_CLASSES)
  layers = [n * m for n, m in zip(sizes[:-1], sizes[1:])]
  return 2 * (2 * sum(layers) + sum(layers[1:]))


def matmul_gflops(seconds: float = 5.0) -> float:
  """TF's float32 matmul throughput here on the model's first-layer shape."""
  tf = console.import_tensorflow()
  images = tf.random.normal([100, hp.IMAGE_PIXELS])
  weights = tf.random.normal([hp.IMAGE_PIXELS, 256])
  reps = 1000

  @tf.function
  def loop():
    total = tf.zeros([100, 256])
    for _ in tf.range(reps):
      total += tf.matmul(images, weights)
    return total

  loop().numpy()  # trace and warm up
  rates = []
  deadline = time.perf_counter() + seconds
  while time.perf_counter() < deadline:
    start = time.perf_counter()
    loop().numpy()
    rates.append(2 * 100 * hp.IMAGE_PIXELS * 256 * reps
                 / (time.perf_counter() - start) / 1e9)
  return statistics.median(rates)


def command(port: str, script: str, seed: int, jax_python: str = None):
  if port == PEER:
    return [jax_python, os.path.join("benchmarks", "jax_peer.py"), script,
            f"--seed={seed}"]
  return ["make", "-s", f"{port}-{script}", f"ARGS=--seed={seed}"]


def has_jax(python: str) -> bool:
  try:
    return subprocess.run([python, "-c", "import jax"], capture_output=True,
                          check=False).returncode == 0
  except OSError:  # no such file, not executable
    return False


def run_target(port: str, script: str, seed: int, jax_python: str = None) -> dict:
  """One `make <port>-<script>` run (or the peer's): wall time, peak RSS and
  phase times."""
  return measure(command(port, script, seed, jax_python), f"{port}-{script}")


def measure(argv, name: str) -> dict:
  """One run of the command `argv` (a training target): its wall time, peak
  RSS (of its largest process) and the phase times its chief wrote."""
  # Output goes to files, not pipes: nobody reads a pipe while wait4 waits.
  with tempfile.NamedTemporaryFile(suffix=".json") as timings, \
       tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
    env = dict(os.environ, MNIST_PORT_TIMINGS=timings.name)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=err)
    # wait4's peak RSS covers make and the processes it waited for.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
      raise SystemExit(f"{name} failed: {stderr.strip()[-400:]}")
    phases = json.load(open(timings.name))
  accuracy = float(stdout.strip().splitlines()[-1].split()[-1])
  return dict(phases, process_s=wall, peak_rss_mb=usage.ru_maxrss / 1024,
              accuracy=accuracy)


def summarize(values):
  return {"median": statistics.median(values), "min": min(values),
          "max": max(values)}


def main(argv=None) -> None:
  """Parse, check the JAX Python, measure the floor, run, summarise, write."""
  args = _parse_args(argv)
  scripts = args.scripts.split(",")
  ports = PORTS + ((PEER,) if args.jax_python else ())
  _check_jax_python(args.jax_python)
  gflops, floor_s, steps = _measure_floor()
  runs = _run_all(ports, scripts, args.runs, args.jax_python)
  results = {"matmul_gflops": gflops, "floor_s": floor_s,
             "flops_per_example": flops_per_example(),
             # The machine, as the targets' TensorFlow saw it (the commands'
             # defaults: one intra-op thread, native kernels).
             "machine": machine.fingerprint(
                 {**os.environ, **console.thread_environment(1)}),
             "targets": _summarise_runs(runs, steps, floor_s)}
  _print_table(gflops, floor_s, results["targets"])
  if args.cluster_runs:
    results["clusters"] = clusters.summarise(clusters.run_all(measure, args.cluster_runs))
    clusters.print_table(results["clusters"])
  _write_json(args.out, results)


def _parse_args(argv):
  """The command line: runs per target, the JSON file, scripts, a JAX Python."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", type=int, default=3, help="runs per target")
  parser.add_argument("--out", default="bench.json", help="JSON results")
  parser.add_argument("--scripts", default=",".join(SCRIPTS))
  parser.add_argument("--jax_python", help="a Python with jax: also time "
                      "benchmarks/jax_peer.py")
  parser.add_argument("--cluster_runs", type=int, default=3,
                      help="runs of each cluster mode and its one-process "
                      "references (benchmarks/clusters.py); 0: none")
  return parser.parse_args(argv)


def _check_jax_python(jax_python) -> None:
  """Stops with one line, before anything runs, if --jax_python lacks jax."""
  if jax_python and not has_jax(jax_python):
    raise SystemExit(f"error: --jax_python {jax_python} cannot import "
                     "jax: give a Python that has it (see README, Speed and memory)")


def _measure_floor():
  """The matmul throughput, the 15-epoch FLOP floor (printed to stderr) and
  the training steps in 15 epochs."""
  gflops = matmul_gflops()
  epochs = hp.HParams.training_epochs
  steps = epochs * (hp.TRAIN_EXAMPLES // hp.HParams.batch_size)
  floor_s = flops_per_example() * hp.TRAIN_EXAMPLES * epochs / (gflops * 1e9)
  print(f"matmul throughput {gflops:.0f} GFLOP/s; {flops_per_example() / 1e6:.2f} "
        f"MFLOP per example; 15-epoch floor {floor_s:.1f} s", file=sys.stderr)
  return gflops, floor_s, steps


def _run_all(ports, scripts, count: int, jax_python) -> dict:
  """Every target `count` times, ports alternating; {(port, script): [run]}."""
  runs = {(p, s): [] for p in ports for s in scripts}
  for r in range(1, count + 1):
    for script in scripts:
      for port in ports:  # alternate, so each pair shares the machine's mood
        run = run_target(port, script, seed=r, jax_python=jax_python)
        runs[port, script].append(run)
        print(f"run {r}/{count} {port}-{script}: train {run['train_s']:.1f} s, "
              f"process {run['process_s']:.1f} s, {run['peak_rss_mb']:.0f} MiB",
              file=sys.stderr)
  return runs


def _summarise_runs(runs: dict, steps: int, floor_s: float) -> dict:
  """Each target's entry for the JSON, {"<port>-<script>": entry}, in run order."""
  return {f"{port}-{script}": _target_entry(runs, port, script, steps, floor_s)
          for port, script in runs}


def _target_entry(runs: dict, port: str, script: str, steps: int,
                  floor_s: float) -> dict:
  """One target's times, memory and accuracies; for modern, also its time
  over legacy's (and the peer's), pair by pair."""
  rs = runs[port, script]
  train_s = summarize([r["train_s"] for r in rs])
  entry = {
      "train_s": train_s,
      "steps_per_s": steps / train_s["median"],
      "floor_multiple": train_s["median"] / floor_s,
      "process_s": summarize([r["process_s"] for r in rs]),
      "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
      "phases_median": {k: statistics.median(r[k] for r in rs)
                        for k in ("import_s", "data_s", "evaluate_s")},
      "accuracies": [r["accuracy"] for r in rs],
  }
  if port == "modern":
    for other in ("legacy", PEER):
      if (other, script) in runs:
        entry[f"modern_over_{other}"] = summarize(
            [m["train_s"] / o["train_s"] for m, o in zip(rs, runs[other, script])])
  return entry


def _print_table(gflops: float, floor_s: float, targets: dict) -> None:
  """The floor, then one line per target, to stdout."""
  print(f"\nmatmul {gflops:.0f} GFLOP/s, floor {floor_s:.1f} s for 15 epochs "
        f"({flops_per_example() * hp.TRAIN_EXAMPLES / 1e9:.1f} GFLOP an epoch)")
  print(f"{'target':<13} {'train s (min-max)':>20} {'steps/s':>8} {'x floor':>8}"
        f" {'process s':>10} {'peak MiB':>8} {'modern/legacy':>14}"
        f" {'modern/jax':>11}")
  for name, e in targets.items():
    t = e["train_s"]
    ratios = [f"{e[key]['median']:.2f}" if key in e else ""
              for key in ("modern_over_legacy", f"modern_over_{PEER}")]
    print(f"{name:<13} {t['median']:>6.1f} ({t['min']:.1f}-{t['max']:.1f})"
          f"{'':>4} {e['steps_per_s']:>8.0f} {e['floor_multiple']:>8.2f}"
          f" {e['process_s']['median']:>10.1f} {e['peak_rss_mb']:>8.0f}"
          f" {ratios[0]:>14} {ratios[1]:>11}")


def _write_json(out: str, results: dict) -> None:
  """The results as JSON, so numbers compare between commits."""
  with open(out, "w") as f:
    json.dump(results, f, indent=2)
  print(f"written to {out}")


if __name__ == "__main__":
  main()
