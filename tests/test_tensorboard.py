"""Tests of --logdir (issue 7): both ports write the same TensorBoard scalars.

`cost` (the epoch's mean training cost, at step = epoch) and `accuracy` (the
test accuracy, at step = training_epochs), read back with TensorFlow's own
tf.compat.v1.train.summary_iterator and checked against the printed lines.
A run resumed from --checkpoint_dir appends to the same logdir: every step
once, never twice.
"""

import collections
import concurrent.futures
import dataclasses
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from common import errors
from common import hparams as hp
from common import input_data
from common import summaries
from migration.ports import PORTS
from helpers import ACCURACY_LINE
from helpers import EPOCH_LINE
from helpers import fresh_data_sets
from helpers import run_module
from helpers import small_data_sets

SEED = 3


def read_scalars(logdir):
  """[(tag, step, value)] of every scalar in `logdir`'s event files."""
  scalars = []
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        # FileWriter (legacy) writes simple_value, tf.summary a tensor.
        number = (value.simple_value if value.HasField("simple_value")
                  else tf.make_ndarray(value.tensor).item())
        scalars.append((value.tag, event.step, number))
  return scalars


def by_tag(scalars):
  tags = collections.defaultdict(dict)
  for tag, step, value in scalars:
    assert step not in tags[tag], f"{tag} at step {step} twice"
    tags[tag][step] = value
  return dict(tags)


def printed_numbers(lines):
  """{epoch: cost} and the accuracy, as printed."""
  costs = {int(m.group(1)): float(m.group(2))
           for m in map(EPOCH_LINE.match, lines) if m}
  accuracy = [float(m.group(1)) for m in map(ACCURACY_LINE.match, lines) if m]
  return costs, accuracy


# ---------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def cli_runs(data_dir, tmp_path_factory):
  """hw05 of each port with --logdir, from the command line, side by side
  (with --checkpoint_dir too: saving must not add to the console)."""
  env = {input_data.DATA_DIR_ENV: data_dir}
  logdirs = {port: tmp_path_factory.mktemp(port) / "logs" for port in PORTS}

  def run(port):
    return run_module(f"{port}.hw05", "--train_limit", 1000,
                      "--training_epochs", 3, "--seed", SEED,
                      "--logdir", logdirs[port],
                      "--checkpoint_dir", logdirs[port].parent / "ckpt",
                      env=env, timeout=300)

  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    procs = dict(zip(PORTS, pool.map(run, PORTS)))
  return {port: (procs[port], logdirs[port]) for port in PORTS}


@pytest.mark.parametrize("port", PORTS)
def test_scalars_are_the_printed_costs_and_accuracy(port, cli_runs):
  proc, logdir = cli_runs[port]
  assert proc.returncode == 0, proc.stderr
  assert proc.stderr == ""
  costs, accuracy = printed_numbers(proc.stdout.splitlines())
  assert sorted(costs) == [1, 2, 3] and len(accuracy) == 1
  scalars = by_tag(read_scalars(logdir))
  assert sorted(scalars) == [summaries.ACCURACY_TAG, summaries.COST_TAG]
  assert sorted(scalars[summaries.COST_TAG]) == [1, 2, 3]  # 1-based epochs
  for epoch, value in scalars[summaries.COST_TAG].items():
    # float32 in the event file, nine decimals on the screen.
    assert value == pytest.approx(costs[epoch], rel=1e-6, abs=1e-9)
  assert list(scalars[summaries.ACCURACY_TAG]) == [3]  # step = training_epochs
  # The accuracy is a float32 printed in full: the same number exactly.
  assert np.float32(scalars[summaries.ACCURACY_TAG][3]) == np.float32(accuracy[0])


def test_both_ports_write_the_same_tags_at_the_same_steps(cli_runs):
  steps = {port: sorted((tag, step) for tag, step, _ in read_scalars(logdir))
           for port, (_, logdir) in cli_runs.items()}
  # Not two empty lists: 3 epochs' costs and the accuracy, in each port.
  assert len(steps["legacy"]) == 4
  assert steps["legacy"] == sorted(
      [(summaries.COST_TAG, epoch) for epoch in (1, 2, 3)]
      + [(summaries.ACCURACY_TAG, 3)])
  assert steps["legacy"] == steps["modern"]


# ---------------------------------------------------------------- resumed runs


@pytest.fixture(scope="module")
def mnist(full_mnist):
  return fresh_data_sets(full_mnist)


def train(port, mnist, stop_after=None, training_epochs=4, **kwargs):
  """A small seeded hw05 run; stop_after=N raises Ctrl-C at epoch N's line
  (after the epoch, before its checkpoint). Returns the printed lines."""
  hparams = dataclasses.replace(hp.SCRIPTS["hw05"], hidden_units=(32, 16),
                                training_epochs=training_epochs, seed=SEED)
  data_sets = small_data_sets(mnist, 1000, test_size=1000, seed=SEED)
  lines = []

  def print_fn(line):
    lines.append(line)
    if stop_after and line.startswith(f"Epoch: {stop_after:04d} "):
      raise KeyboardInterrupt

  try:
    PORTS[port].run_training(hparams, data_sets, print_fn=print_fn, **kwargs)
  except KeyboardInterrupt:
    pass
  return lines


@pytest.mark.parametrize("port", PORTS)
def test_resumed_run_appends_each_epoch_once(port, mnist, tmp_path):
  reference = tmp_path / "reference"
  train(port, mnist, logdir=str(reference))
  expected = by_tag(read_scalars(reference))

  logdir, checkpoint_dir = str(tmp_path / "logs"), str(tmp_path / "ckpt")
  train(port, mnist, stop_after=3, logdir=logdir, checkpoint_dir=checkpoint_dir)
  # Epoch 3 was printed but not saved: it is not logged either.
  assert sorted(by_tag(read_scalars(logdir))[summaries.COST_TAG]) == [1, 2]
  train(port, mnist, logdir=logdir, checkpoint_dir=checkpoint_dir)
  # The resumed run is bit-identical, and so are its scalars.
  assert by_tag(read_scalars(logdir)) == expected
  # A finished run started again only evaluates: nothing is logged twice.
  train(port, mnist, logdir=logdir, checkpoint_dir=checkpoint_dir)
  assert by_tag(read_scalars(logdir)) == expected
  assert len(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))) == 3


@pytest.mark.parametrize("port", PORTS)
def test_resumed_run_logs_the_saved_epochs_its_logdir_lacks(port, mnist, tmp_path):
  """A run killed between a checkpoint and its scalar left one out; here the
  first part had no --logdir at all."""
  checkpoint_dir, logdir = str(tmp_path / "ckpt"), str(tmp_path / "logs")
  first = train(port, mnist, stop_after=3, checkpoint_dir=checkpoint_dir)
  rest = train(port, mnist, checkpoint_dir=checkpoint_dir, logdir=logdir)
  costs, _ = printed_numbers(first[:2] + rest)
  scalars = by_tag(read_scalars(logdir))
  assert sorted(scalars[summaries.COST_TAG]) == [1, 2, 3, 4]
  for epoch, value in scalars[summaries.COST_TAG].items():
    assert value == pytest.approx(costs[epoch], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize("flag", ["logdir", "checkpoint_dir"])
def test_a_directory_that_cannot_be_made_is_one_error(port, flag, mnist, tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  target = blocker / "sub"
  with pytest.raises(errors.UserError) as raised:
    train(port, mnist, **{flag: str(target)})
  assert str(raised.value).startswith(
      f"--{flag} {target} is not a writable directory (Not a directory)")
  assert blocker.read_text() == "not a directory"


@pytest.mark.parametrize("flag", ["--logdir", "--checkpoint_dir"])
def test_a_file_is_not_a_directory_flag(flag, tmp_path):
  path = tmp_path / "a_file"
  path.write_text("")
  proc = run_module("legacy.hw04", flag, path, timeout=120)
  assert proc.returncode == 2, proc.stderr
  assert proc.stderr.splitlines() == [
      f"error: flag {flag}={path}: {flag} must name a directory (created if "
      "missing), not a file"]
  assert path.read_text() == ""


def test_a_resumed_run_reads_an_event_file_cut_short(tmp_path):
  """A process killed while writing leaves a truncated last record."""
  writer = tf.summary.create_file_writer(str(tmp_path))
  with writer.as_default():
    for step in (1, 2, 3):
      tf.summary.scalar(summaries.COST_TAG, 0.5, step=step)
  writer.close()
  (path,) = glob.glob(str(tmp_path / "events.out.tfevents.*"))
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:-7])
  assert summaries.logged_steps(str(tmp_path), summaries.COST_TAG) == {1, 2}
  assert summaries.missing_costs(str(tmp_path), [0.1] * 4) == [(3, 0.1), (4, 0.1)]
