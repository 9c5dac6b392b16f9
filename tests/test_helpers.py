"""The shared test helpers (helpers.py) catch what they are there to catch.

Every checker is given output it must refuse, so that a checker loosened
by mistake shows here, not as tests elsewhere that pass when they should
not.
"""

import subprocess

import numpy as np
import pytest

from common import console
from common import input_data
import helpers


def completed(returncode=2, stdout="", stderr="error: --flag is wrong\n"):
  return subprocess.CompletedProcess(["prog"], returncode, stdout, stderr)


# ---------------------------------------------------------------- one error line


def test_one_error_line_is_accepted_and_returned():
  assert helpers.assert_one_error_line(completed(), "--flag") == (
      "error: --flag is wrong")
  assert helpers.assert_one_error_line(
      completed(3, stdout="Epoch: 0001\n"), status=3, stdout=None) == (
          "error: --flag is wrong")


@pytest.mark.parametrize("result, kwargs", [
    (completed(stderr="error: one\nerror: two\n"), {}),  # two lines
    (completed(stderr="error: one\nmore\n"), {}),
    (completed(stderr=""), {}),  # no line at all
    (completed(stderr="Traceback (most recent call last): error: x\n"), {}),
    (completed(stderr="error: see the Traceback above\n"), {}),
    (completed(stderr="warning: not an error line\n"), {}),
    (completed(returncode=1), {}),  # status 2 by default
    (completed(returncode=2), {"status": 3}),
    (completed(stdout="Epoch: 0001 cost = 1.000000000\n"), {}),  # stdout ""
    (completed(stdout="x"), {"stdout": "y"}),
    (completed(), {"fragments": ("--other",)}),  # a fragment it lacks
])
def test_one_error_line_refuses_anything_else(result, kwargs):
  fragments = kwargs.pop("fragments", ())
  with pytest.raises(AssertionError):
    helpers.assert_one_error_line(result, *fragments, **kwargs)


# ---------------------------------------------------------------- patterns


def test_line_patterns_accept_what_the_ports_print():
  epoch = helpers.EPOCH_LINE.match(console.epoch_line(7, 15.0826017941))
  assert epoch.groups() == ("0007", "15.082601794")
  accuracy = helpers.ACCURACY_LINE.match(console.accuracy_line(np.float32(0.9483)))
  assert accuracy.group(1) == "0.9483"
  assert helpers.ACCURACY_LINE.match("Accuracy: 1.0")


@pytest.mark.parametrize("line", [
    "Epoch: 001 cost = 1.000000000", "Epoch: 0001 cost = 1.00000000",
    "Epoch: 0001 cost = 1.0000000000", "Epoch: 0001 cost = -1.000000000",
    "Epoch: 0001 cost = 1.000000000 ", " Epoch: 0001 cost = 1.000000000",
    "Epoch: 0001 cost = nan"])
def test_epoch_pattern_refuses_other_lines(line):
  assert not helpers.EPOCH_LINE.match(line)


@pytest.mark.parametrize("line", [
    "Accuracy: 0.9483 ", "Accuracy: 2.5", "Accuracy: nan", "Accuracy: .95",
    "Accuracy: 0.9483\nmore", "accuracy: 0.9483", "Accuracy:  0.9483"])
def test_accuracy_pattern_refuses_other_lines(line):
  assert not helpers.ACCURACY_LINE.match(line)


def test_summary_lines_keep_only_the_summary_in_order():
  text = "Epoch 1/1\nEpoch: 0001 cost = 1.000000000\nnoise\nAccuracy: 0.5\n"
  assert helpers.summary_lines(text) == ["Epoch: 0001 cost = 1.000000000",
                                         "Accuracy: 0.5"]


# ---------------------------------------------------------------- data


def test_fresh_data_sets_are_what_read_data_sets_returns(full_mnist, data_dir):
  """Same arrays (views, not copies), same batches as a read with that seed
  and train_limit; the shared fixture's own generators are left alone."""
  state = full_mnist.train.state()
  read = input_data.read_data_sets(data_dir, one_hot=True, seed=7,
                                   train_limit=300)
  fresh = helpers.fresh_data_sets(full_mnist, seed=7, train_limit=300)
  for split in ("train", "validation", "test"):
    want, got = getattr(read, split), getattr(fresh, split)
    np.testing.assert_array_equal(got.images, want.images)
    np.testing.assert_array_equal(got.labels, want.labels)
    assert np.shares_memory(got.images, getattr(full_mnist, split).images)
    for _ in range(3):  # 3 x 128 > 300: the second epoch's shuffle too
      for got_part, want_part in zip(got.next_batch(128), want.next_batch(128)):
        np.testing.assert_array_equal(got_part, want_part)
  assert fresh.train.num_examples == 300
  other = helpers.fresh_data_sets(full_mnist, seed=8, train_limit=300)
  assert not np.array_equal(other.train.next_batch(10)[1],
                            helpers.fresh_data_sets(full_mnist, seed=7,
                                                    train_limit=300)
                            .train.next_batch(10)[1])
  assert helpers.fresh_data_sets(full_mnist).train.num_examples == 55000
  after = full_mnist.train.state()
  assert after["rng"] == state["rng"]
  assert (after["epochs_completed"], after["index_in_epoch"]) == (
      state["epochs_completed"], state["index_in_epoch"])


def test_small_data_sets_take_the_first_images(full_mnist):
  small = helpers.small_data_sets(full_mnist, 100, test_size=50, seed=3)
  np.testing.assert_array_equal(small.train.images, full_mnist.train.images[:100])
  np.testing.assert_array_equal(small.train.labels, full_mnist.train.labels[:100])
  np.testing.assert_array_equal(small.test.images, full_mnist.test.images[:50])
  np.testing.assert_array_equal(small.test.labels, full_mnist.test.labels[:50])
  assert small.validation is full_mnist.validation
  again = helpers.small_data_sets(full_mnist, 100, test_size=50, seed=3)
  np.testing.assert_array_equal(small.train.next_batch(20)[0],
                                again.train.next_batch(20)[0])
