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
