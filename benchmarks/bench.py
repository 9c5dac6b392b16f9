"""make bench: speed and memory of both ports against the FLOP floor.

For hw04 and hw05 in legacy and modern, in one run on this machine, each
target --runs times (5; --quick: once), after --warmup unrecorded runs of
the first target (1: the first run of a bench was the slow one, 24-30%
above the median in its training phase, on two days):
  - the training phase (median, min-max) and steps per second;
  - the whole process of `make <port>-<script>` (median, min-max), what it
    spends outside training (import, data, evaluation, start and exit) and
    its after-training phase (last `Epoch:` line to `Accuracy:` line);
  - its peak resident memory;
  - the training time as a multiple of the FLOP floor: the model's forward +
    backward FLOPs for the 15 epochs over the machine's float32 matmul rate
    on all its cores, a one-thread product on every core at once (the
    one-thread rate is printed beside it).
Every measured run is the real make target, timed from outside (wall clock,
peak RSS from wait4) and from inside (phase times the entry point writes
when $MNIST_PORT_TIMINGS names a file). The targets alternate and ratios are
taken pair by pair (modern/legacy; each port over the JAX peer), since the
machine's speed drifts. A run whose whole process took more than 20% above
its target's median is flagged. Prints one table and writes it as JSON
(--out), so numbers compare between commits.

Then hw04 on a 2-worker cluster in each mode against one process
(benchmarks/clusters.py; --cluster_runs 0 leaves it out).

With --jax_python (a Python that has jax), the peer that sets the pace,
benchmarks/jax_peer.py (the same MLP written in JAX), runs in turn with the
ports and is timed the same way. With --cpus (e.g. 0), everything, the
matmul rates included, runs on those processors only: `--cpus 0` is a
one-core machine.

  python -m benchmarks.bench [--runs 5 | --quick] [--warmup 1] [--out bench.json]
                            [--jax_python P] [--cluster_runs 3] [--cpus 0]
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
SLOW_RUN = 1.2  # a whole process this many times its target's median is flagged


def flops_per_example(hidden_units=hp.HParams.hidden_units) -> int:
  """Forward + backward FLOPs (2 per multiply-add) of one training example.

  Forward: one matmul per layer. Backward: every layer's weight gradient,
  and the input gradient of every layer but the first (nothing flows back
  into the images). Elementwise work is left out: the floor is the matmuls.
  """
  sizes = hp.layer_sizes(hidden_units)
  layers = [n * m for n, m in zip(sizes[:-1], sizes[1:])]
  return 2 * (2 * sum(layers) + sum(layers[1:]))


def matmul_gflops(seconds: float = 5.0) -> float:
  """TF's float32 matmul throughput here on the model's first-layer shape,
  with the threads this process's TensorFlow was given."""
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


def matmul_rates() -> dict:
  """The matmul rate on one thread, and on all of this process's cores: one
  one-thread process per core at once, their rates summed (TF splitting one
  small product over two threads does less than two products side by side).
  Each in a fresh process: TF fixes its threads at start-up."""
  code = "from benchmarks import bench; print(bench.matmul_gflops())"
  env = {k: v for k, v in os.environ.items() if not k.startswith("TF_NUM_")}
  env.update(console.thread_environment(1))

  def start(count):
    return [subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True) for _ in range(count)]

  def rates(procs):
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
      raise SystemExit("error: the matmul measurement failed")
    return [float(out.split()[-1]) for out in outs]

  one_thread = rates(start(1))[0]
  all_cores = sum(rates(start(len(os.sched_getaffinity(0)))))
  return {"all_cores": all_cores, "one_thread": one_thread}


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
  if args.cpus:  # the children (every run, the matmul rates) inherit it
    os.sched_setaffinity(0, args.cpus)
  scripts = args.scripts.split(",")
  ports = PORTS + ((PEER,) if args.jax_python else ())
  _check_jax_python(args.jax_python)
  rates, floor_s, steps = _measure_floor()
  runs = _run_all(ports, scripts, args.runs, args.jax_python, args.warmup)
  results = {"matmul_gflops": rates["all_cores"],
             "matmul_gflops_one_thread": rates["one_thread"],
             "floor_s": floor_s, "flops_per_example": flops_per_example(),
             "runs": args.runs, "warmup_runs": args.warmup,
             # The machine, as the targets' TensorFlow saw it (the commands'
             # defaults: one intra-op thread, native kernels).
             "machine": machine.fingerprint(
                 {**os.environ, **console.thread_environment(1)}),
             "targets": _summarise_runs(runs, steps, floor_s)}
  _print_table(rates, floor_s, results["targets"])
  if args.cluster_runs:
    results["clusters"] = clusters.summarise(clusters.run_all(measure, args.cluster_runs))
    clusters.print_table(results["clusters"])
  _write_json(args.out, results)


def _parse_args(argv):
  """The command line: runs per target, the JSON file, scripts, a JAX Python."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", type=int, default=5, help="runs per target")
  parser.add_argument("--warmup", type=int, default=1,
                      help="unrecorded runs of the first target before the rest")
  parser.add_argument("--quick", action="store_true",
                      help="one run of each target and of each cluster mode")
  parser.add_argument("--out", default="bench.json", help="JSON results")
  parser.add_argument("--scripts", default=",".join(SCRIPTS))
  parser.add_argument("--jax_python", help="a Python with jax: also time "
                      "benchmarks/jax_peer.py")
  parser.add_argument("--cluster_runs", type=int, default=3,
                      help="runs of each cluster mode and its one-process "
                      "references (benchmarks/clusters.py); 0: none")
  parser.add_argument("--cpus", help="run on these processors only, e.g. 0 "
                      "(one core) or 0,1")
  args = parser.parse_args(argv)
  if args.quick:
    args.runs, args.cluster_runs = 1, min(args.cluster_runs, 1)
  if args.warmup < 0:
    raise SystemExit(f"error: --warmup {args.warmup}: give 0 or more "
                     "unrecorded runs")
  if args.runs < 1 or args.cluster_runs < 0:
    raise SystemExit(f"error: --runs {args.runs} --cluster_runs "
                     f"{args.cluster_runs}: give at least 1 run (0 cluster runs "
                     "leave the clusters out)")
  args.cpus = _cpu_set(args.cpus) if args.cpus else None
  return args


def _cpu_set(text: str) -> set:
  """"0,1" -> {0, 1}, processors this machine lets the bench run on; else
  one line and exit 1."""
  offered = os.sched_getaffinity(0)
  try:
    cpus = {int(c) for c in text.split(",")}
  except ValueError:
    cpus = None
  if not cpus or not cpus <= offered:
    raise SystemExit(f"error: --cpus {text}: give processor numbers from "
                     f"{','.join(map(str, sorted(offered)))}, e.g. --cpus 0")
  return cpus


def _check_jax_python(jax_python) -> None:
  """Stops with one line, before anything runs, if --jax_python lacks jax."""
  if jax_python and not has_jax(jax_python):
    raise SystemExit(f"error: --jax_python {jax_python} cannot import "
                     "jax: give a Python that has it (see README, Speed and memory)")


def _measure_floor():
  """The matmul rates, the 15-epoch FLOP floor on all cores (printed to
  stderr) and the training steps in 15 epochs."""
  rates = matmul_rates()
  epochs = hp.HParams.training_epochs
  steps = epochs * (hp.TRAIN_EXAMPLES // hp.HParams.batch_size)
  floor_s = (flops_per_example() * hp.TRAIN_EXAMPLES * epochs
             / (rates["all_cores"] * 1e9))
  print(f"matmul {rates['all_cores']:.0f} GFLOP/s on "
        f"{len(os.sched_getaffinity(0))} core(s), {rates['one_thread']:.0f} on "
        f"one thread; {flops_per_example() / 1e6:.2f} MFLOP per example; "
        f"15-epoch floor {floor_s:.1f} s", file=sys.stderr)
  return rates, floor_s, steps


def _run_all(ports, scripts, count: int, jax_python, warmup: int = 0) -> dict:
  """`warmup` unrecorded runs of the first target, then every target `count`
  times, ports alternating; {(port, script): [run]}."""
  runs = {(p, s): [] for s in scripts for p in ports}
  for w in range(1, warmup + 1):
    run = run_target(ports[0], scripts[0], seed=w, jax_python=jax_python)
    print(f"warm-up {w}/{warmup} {ports[0]}-{scripts[0]} (not recorded): "
          f"train {run['train_s']:.1f} s, process {run['process_s']:.1f} s",
          file=sys.stderr)
  for r in range(1, count + 1):
    for script in scripts:
      for port in ports:  # alternate, so each pair shares the machine's mood
        run = run_target(port, script, seed=r, jax_python=jax_python)
        runs[port, script].append(run)
        print(f"run {r}/{count} {port}-{script}: train {run['train_s']:.1f} s, "
              f"process {run['process_s']:.1f} s, after training "
              f"{run['evaluate_s']:.2f} s, {run['peak_rss_mb']:.0f} MiB",
              file=sys.stderr)
  return runs


def _summarise_runs(runs: dict, steps: int, floor_s: float) -> dict:
  """Each target's entry for the JSON, {"<port>-<script>": entry}, in run order."""
  return {f"{port}-{script}": _target_entry(runs, port, script, steps, floor_s)
          for port, script in runs}


def _target_entry(runs: dict, port: str, script: str, steps: int,
                  floor_s: float) -> dict:
  """One target's times, memory, accuracies, slow runs and its ratios to
  the other targets of its script, pair by pair."""
  rs = runs[port, script]
  train_s = summarize([r["train_s"] for r in rs])
  process_s = summarize([r["process_s"] for r in rs])
  return {
      "train_s": train_s,
      "process_s": process_s,
      "outside_training_s": summarize([r["process_s"] - r["train_s"] for r in rs]),
      "after_training_s": summarize([r["evaluate_s"] for r in rs]),
      "steps_per_s": steps / train_s["median"],
      "floor_multiple": train_s["median"] / floor_s,
      "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
      "phases_median": {k: statistics.median(r[k] for r in rs)
                        for k in ("import_s", "data_s", "evaluate_s")},
      "accuracies": [r["accuracy"] for r in rs],
      "slow_runs": slow_runs(rs, process_s["median"]),
      "ratios": _ratios(runs, port, script),
  }


def slow_runs(rs, median_s: float) -> list:
  """The runs (1-based) whose whole process took over SLOW_RUN x the median."""
  return [{"run": i, "process_s": r["process_s"],
           "over_median": r["process_s"] / median_s}
          for i, r in enumerate(rs, 1) if r["process_s"] > SLOW_RUN * median_s]


def _ratios(runs: dict, port: str, script: str) -> dict:
  """Pair by pair: modern over legacy (training and whole process), each
  port over the peer (training); {"modern/legacy train": summary, ...}."""
  ratios = {}
  others = {"modern": ("legacy", PEER), "legacy": (PEER,)}.get(port, ())
  for other in others:
    if (other, script) not in runs:
      continue
    pairs = list(zip(runs[port, script], runs[other, script]))
    keys = ("train_s", "process_s") if other != PEER else ("train_s",)
    for key in keys:
      ratios[f"{port}/{other} {key[:-2]}"] = summarize(
          [a[key] / b[key] for a, b in pairs])
  return ratios


RATIO_COLUMNS = {"modern/legacy train": "m/l train", "modern/legacy process":
                 "m/l proc", "legacy/jax train": "l/jax", "modern/jax train": "m/jax"}


def _print_table(rates: dict, floor_s: float, targets: dict) -> None:
  """The floor, then one line per target, to stdout."""
  print(f"\nmatmul {rates['all_cores']:.0f} GFLOP/s on all cores "
        f"({rates['one_thread']:.0f} on one thread), floor {floor_s:.1f} s for "
        f"15 epochs ({flops_per_example() * hp.TRAIN_EXAMPLES / 1e9:.1f} GFLOP "
        "an epoch)")
  print(f"{'target':<12} {'train s (min-max)':>19} {'process s (min-max)':>20}"
        f" {'outside':>7} {'after':>5} {'steps/s':>7} {'x floor':>7}"
        f" {'MiB':>4} " + " ".join(f"{c:>9}" for c in RATIO_COLUMNS.values())
        + "  slow runs")
  for name, e in targets.items():
    t, p = e["train_s"], e["process_s"]
    ratios = [f"{e['ratios'][c]['median']:.2f}" if c in e["ratios"] else ""
              for c in RATIO_COLUMNS]
    slow = ", ".join(f"run {r['run']} +{100 * (r['over_median'] - 1):.0f}%"
                     for r in e["slow_runs"])
    print(f"{name:<12} {t['median']:>6.1f} ({t['min']:.1f}-{t['max']:.1f})"
          f"{'':>1} {p['median']:>7.1f} ({p['min']:.1f}-{p['max']:.1f})"
          f" {e['outside_training_s']['median']:>7.1f}"
          f" {e['after_training_s']['max']:>5.2f} {e['steps_per_s']:>7.0f}"
          f" {e['floor_multiple']:>7.2f} {e['peak_rss_mb']:>4.0f} "
          + " ".join(f"{r:>9}" for r in ratios) + f"  {slow}")


def _write_json(out: str, results: dict) -> None:
  """The results as JSON, so numbers compare between commits."""
  with open(out, "w") as f:
    json.dump(results, f, indent=2)
  print(f"written to {out}")


if __name__ == "__main__":
  main()
