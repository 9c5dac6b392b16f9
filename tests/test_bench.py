"""The benchmark's FLOP floor, from the layer sizes (issue: 1.21 MFLOP/example).

bench.flops_per_example is checked against an independent count: the
matrix products TensorFlow itself builds to differentiate the model's cost
with respect to its weights (2 FLOPs per multiply-add).
"""

import pytest

from benchmarks import bench
from benchmarks import clusters
from common import console
from common import hparams as hp
from helpers import run_module
from modern import mlp


def matmul_flops_of_a_training_step(hidden_units):
  """(FLOPs per example, number of products) of the MatMul ops in the
  graph of one training step's cost and weight gradients.

  The graph is modern's model differentiated by a GradientTape inside a
  tf.function, which builds only what the weights' gradients need (no
  gradient into the images). The ops counted are those the outputs depend
  on. The batch is the one unknown dimension of each product: counted as
  1, it gives the cost of one example.
  """
  tf = console.import_tensorflow()
  model = mlp.inference(hidden_units)
  loss = mlp.loss()

  @tf.function
  def step(images, labels):
    with tf.GradientTape() as tape:
      cost = loss(labels, model(images, training=True))
    return cost, tape.gradient(cost, model.trainable_variables)

  graph = step.get_concrete_function(
      tf.TensorSpec([None, hp.IMAGE_PIXELS]),
      tf.TensorSpec([None, hp.NUM_CLASSES])).graph
  seen, stack, flops, matmuls = set(), [t.op for t in graph.outputs], 0, 0
  while stack:
    op = stack.pop()
    if op.name in seen:
      continue
    seen.add(op.name)
    stack.extend(tensor.op for tensor in op.inputs)
    stack.extend(op.control_inputs)
    assert "MatMul" not in op.type or op.type == "MatMul", op.type
    if op.type != "MatMul":
      continue
    a, b = (tensor.shape.as_list() for tensor in op.inputs)
    m, k = a[::-1] if op.get_attr("transpose_a") else a
    k_b, n = b[::-1] if op.get_attr("transpose_b") else b
    dims = [m, k if k is not None else k_b, n]
    assert dims.count(None) == 1, (op.name, a, b)  # the batch, once
    product = 1
    for dim in dims:
      product *= dim or 1
    flops += 2 * product
    matmuls += 1
  return flops, matmuls


def test_flops_per_example_counts_forward_and_backward_matmuls():
  # Forward 784*256 + 256*128 + 128*256 + 256*10 multiply-adds; backward the
  # same for the weight gradients plus the input gradients of layers 2-4.
  forward = 784 * 256 + 256 * 128 + 128 * 256 + 256 * 10
  input_grads = 256 * 128 + 128 * 256 + 256 * 10
  assert bench.flops_per_example() == 2 * (2 * forward + input_grads)
  assert abs(bench.flops_per_example() / 1.21e6 - 1) < 0.01
  # 55,000 examples an epoch: about 67 GFLOP; 15 epochs about 1.0 TFLOP.
  assert abs(bench.flops_per_example() * 55000 * 15 / 1e12 - 1.0) < 0.01


def test_flops_follow_the_hidden_units():
  assert bench.flops_per_example((10,)) == 2 * (2 * (784 * 10 + 10 * 10) + 10 * 10)


@pytest.mark.parametrize("hidden_units", [
    hp.HParams.hidden_units, (10,), (5, 7, 3, 9)])
def test_flops_are_the_matmuls_tensorflow_builds_for_a_training_step(hidden_units):
  flops, matmuls = matmul_flops_of_a_training_step(hidden_units)
  layers = len(hidden_units) + 1
  # Forward and weight gradient of every layer, input gradient of all but one.
  assert matmuls == 3 * layers - 1
  assert bench.flops_per_example(hidden_units) == flops


def test_a_jax_python_without_jax_is_one_line_and_writes_nothing(tmp_path):
  out = tmp_path / "bench.json"
  no_jax = tmp_path / "python-without-jax"  # fails `python -c "import jax"`
  no_jax.write_text("#!/bin/sh\nexit 1\n")
  no_jax.chmod(0o755)
  for python in (str(tmp_path / "no-such-python"), str(no_jax)):
    proc = run_module("benchmarks.bench", f"--jax_python={python}", f"--out={out}")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"error: --jax_python {python} cannot import jax: give a Python that "
        "has it (see README, Speed and memory)"]
    assert not out.exists()


@pytest.mark.parametrize("flags,problem", [
    (("--cpus=9999",), "--cpus 9999: give processor numbers from"),
    (("--cpus=x",), "--cpus x: give processor numbers from"),
    (("--runs=0",), "--runs 0 --cluster_runs 3: give at least 1 run"),
    (("--warmup=-1",), "--warmup -1: give 0 or more unrecorded runs"),
])
def test_bad_bench_flags_are_one_line_before_anything_runs(tmp_path, flags, problem):
  out = tmp_path / "bench.json"
  proc = run_module("benchmarks.bench", *flags, f"--out={out}")
  assert proc.returncode == 1
  assert len(proc.stderr.splitlines()) == 1 and problem in proc.stderr
  assert not out.exists()


def made_up_runs(process_s, train_s=None):
  return [dict(process_s=p, train_s=t, evaluate_s=0.1, import_s=2.0, data_s=0.2,
               peak_rss_mb=800, accuracy=0.9)
          for p, t in zip(process_s, train_s or [p - 4 for p in process_s])]


def test_warmup_runs_the_first_target_first_and_records_nothing(monkeypatch):
  calls = []

  def fake_run(port, script, seed, jax_python=None):
    calls.append((port, script, seed))
    return dict(made_up_runs([10.0 + len(calls)])[0], call=len(calls))

  monkeypatch.setattr(bench, "run_target", fake_run)
  runs = bench._run_all(("legacy", "modern"), ["hw04", "hw05"], 2, None, warmup=1)
  assert calls[0] == ("legacy", "hw04", 1) and len(calls) == 1 + 2 * 4
  assert [r["call"] for r in runs["legacy", "hw04"]] == [2, 6]
  assert [r["call"] for r in runs["modern", "hw05"]] == [5, 9]


def test_a_run_over_120_percent_of_the_median_is_flagged():
  runs = made_up_runs([10.0, 14.3, 12.0, 12.5, 15.0])  # median 12.0
  assert bench.slow_runs(runs, 12.0) == [{"run": 5, "process_s": 15.0,
                                          "over_median": pytest.approx(1.25)}]
  assert [r["run"] for r in bench.slow_runs(runs, 10.0)] == [2, 4, 5]


def test_ratios_are_taken_pair_by_pair():
  """The machine slows down in run 2: pair by pair, modern is 0.5x legacy
  in both runs, which the ratio of the medians would not say."""
  runs = {("legacy", "hw04"): made_up_runs([14.0, 24.0], [10.0, 20.0]),
          ("modern", "hw04"): made_up_runs([9.0, 14.0], [5.0, 10.0]),
          ("jax", "hw04"): made_up_runs([6.0, 7.0], [4.0, 5.0])}
  table = bench._summarise_runs(runs, steps=8250, floor_s=2.0)
  modern = table["modern-hw04"]["ratios"]
  assert modern["modern/legacy train"] == {"median": 0.5, "min": 0.5, "max": 0.5}
  assert modern["modern/legacy process"]["median"] == pytest.approx(
      (9 / 14 + 14 / 24) / 2)
  assert modern["modern/jax train"]["max"] == pytest.approx(2.0)
  assert table["legacy-hw04"]["ratios"] == {
      "legacy/jax train": {"median": 3.25, "min": 2.5, "max": 4.0}}
  assert table["modern-hw04"]["outside_training_s"]["median"] == pytest.approx(4.0)
  assert table["modern-hw04"]["floor_multiple"] == pytest.approx(7.5 / 2.0)


# ---------------------------------------------------------- clusters


def test_a_step_moves_the_model_once_each_way_per_worker():
  # hw04: 784*256 + 256*128 + 128*256 + 256*10 weights, 256+128+256+10 biases.
  assert clusters.parameter_count() == 269_450
  assert clusters.megabytes_per_step("legacy async") == pytest.approx(1.0778)
  # A ring all-reduce of 2 workers: each sends and receives half the gradients.
  assert clusters.megabytes_per_step("modern") == pytest.approx(0.5389)


def test_communication_is_a_cluster_step_less_one_process_step_on_its_batch():
  """Made-up runs: every cluster 10 s, one process 6 s (batch 100) and 8 s
  (batch 50, twice the steps)."""
  def runs(train_s, process_s):
    return [dict(train_s=train_s, process_s=process_s, peak_rss_mb=500,
                 accuracy=0.9)] * 3
  results = {}
  for mode, (port, _) in clusters.MODES.items():
    results[f"{mode} cluster"] = runs(10.0, 20.0)
    results[f"{port} one process"] = runs(6.0, 10.0)
    results[f"{port} one process, batch 50"] = runs(8.0, 12.0)
  table = clusters.summarise(results)
  steps = clusters.EPOCHS * 550
  # async: each worker takes half the steps, each on a batch of 100.
  assert table["legacy async"]["communication_ms_per_step"] == pytest.approx(
      1e3 * (10.0 / (steps / 2) - 6.0 / steps))
  # sync: every step, each worker's half batch against one process's batch of 50.
  assert table["modern"]["communication_ms_per_step"] == pytest.approx(
      1e3 * (10.0 / steps - 8.0 / (2 * steps)))
  assert table["legacy sync"]["process_over_single"] == pytest.approx(2.0)
  assert table["modern"]["steps_per_s"] == pytest.approx(steps / 10.0)
