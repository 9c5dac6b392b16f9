"""The benchmark's FLOP floor, from the layer sizes (issue: 1.21 MFLOP/example)."""

from benchmarks import bench
from helpers import run_module


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
