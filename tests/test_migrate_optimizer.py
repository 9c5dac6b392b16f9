"""Tests of carrying a half-trained run across the ports (issue 18).

  modern.migrate_checkpoint --with_optimizer / --checkpoint_dir  legacy -> modern
  legacy.migrate_checkpoint                                      modern -> legacy

The proof: a run trained for some steps in one port (hw05's Adam, dropout
off so that both ports compute the same net), migrated with its optimizer
state, takes the same next ten steps on the same batches in the other port
as in its own: costs within test_parity.py's ten-step tolerance (rtol 1e-4,
atol 1e-6), and weights within 1e-4 of each variable's largest value
(measured here: 6e-6 and 2e-6). The comparison must fail when the slots are
not migrated (zeros) or the step count is off by one (measured: costs off by
240% and 12-16%): those are run too, and must not pass. Then the commands
as users run them, and their refusals.
"""

import concurrent.futures
import dataclasses
import functools
import json
import os
import re
import shutil

import keras
import numpy as np
from numpy.testing import assert_allclose
import pytest
import tensorflow as tf

from common import checkpoint_dir
from common import errors
from common import hparams as hp
from common import input_data
from legacy import checkpoints as legacy_checkpoints
from legacy import train as legacy_train
from migration import optimizer_state
from migration import transplant
from modern import checkpoints as modern_checkpoints
from modern import train as modern_train
from helpers import assert_one_error_line
from helpers import fresh_data_sets
from helpers import run_module
from helpers import summary_lines

v1 = tf.compat.v1

SEED = 3
TRAIN_LIMIT = 500  # 5 steps an epoch: two epochs are 10 Adam steps
# hw05's Adam (lr 0.9, beta1 0.6, beta2 0.8, epsilon 0.1) without dropout.
HPARAMS = dataclasses.replace(hp.SCRIPTS["hw05"], seed=SEED, keep_prob=1.0,
                              train_limit=TRAIN_LIMIT, training_epochs=2)
FIRST_ROW = 1000  # the next ten steps' batches: rows neither run has seen


def quiet(line):
  del line


@pytest.fixture(scope="module")
def runs(full_mnist, tmp_path_factory):
  """A legacy and a modern run of HPARAMS, 10 steps each, in --checkpoint_dirs."""
  root = tmp_path_factory.mktemp("runs")
  dirs = {}
  for port, train in (("legacy", legacy_train), ("modern", modern_train)):
    dirs[port] = str(root / port)
    train.run_training(HPARAMS, fresh_data_sets(full_mnist, SEED, TRAIN_LIMIT),
                       checkpoint_dir=dirs[port], print_fn=quiet)
  return dirs


@pytest.fixture(scope="module")
def batches(full_mnist):
  train = full_mnist.train
  rows = [slice(FIRST_ROW + i * 100, FIRST_ROW + (i + 1) * 100) for i in range(10)]
  return [(train.images[r], train.labels[r]) for r in rows]


def legacy_steps(run_dir, batches, hparams=HPARAMS, prefix=None):
  """Resumes legacy's run in `run_dir` (or the checkpoint at `prefix`), one
  step a batch: (costs, weights)."""
  model = legacy_train.build_model(hparams)
  checkpointer = (legacy_checkpoints.Checkpoints(run_dir, model.graph)
                  if run_dir else None)
  with v1.Session(graph=model.graph) as sess:
    sess.run(model.init_op)
    if prefix:
      with model.graph.as_default():
        v1.train.Saver().restore(sess, prefix)
    else:
      assert checkpointer.restore(sess) is not None
    costs = [sess.run([model.train_op, model.cost],
                      legacy_train.fill_feed_dict(model, x, y))[1]
             for x, y in batches]
    return costs, legacy_train.model_weights(sess, model)


def modern_model(run_dir, hparams=HPARAMS):
  model = modern_train.build_model(hparams)
  assert modern_checkpoints.Checkpoints(run_dir, model).restore() is not None
  return model


def keras_steps(model, batches):
  """One train_on_batch a batch (each returns its loss before the step)."""
  costs = [model.train_on_batch(x, y, return_dict=True)["loss"] for x, y in batches]
  return costs, transplant.keras_weights(model)


def assert_same_steps(expected, actual):
  """Costs within test_parity's ten-step tolerance; weights to 1e-4 of their scale."""
  (expected_costs, expected_weights), (costs, weights) = expected, actual
  assert_allclose(costs, expected_costs, rtol=1e-4, atol=1e-6, err_msg="costs")
  assert set(weights) == set(expected_weights)
  for name, value in expected_weights.items():
    assert_allclose(weights[name], value, rtol=1e-4,
                    atol=1e-4 * np.abs(value).max(), err_msg=name)


def broken(state, how):
  """`state` as a migration that forgot the slots, or miscounted the steps."""
  if how == "no slots":
    return dataclasses.replace(
        state, slots={name: np.zeros_like(v) for name, v in state.slots.items()})
  return dataclasses.replace(state, step=state.step + how)


# ---------------------------------------------------------------- ten steps


def test_legacy_run_continues_in_modern_as_in_legacy(runs, batches, tmp_path):
  state = optimizer_state.read_legacy_run(runs["legacy"])
  assert state.step == 10 and state.training.epoch == 2
  target = str(tmp_path / "modern")
  optimizer_state.write_modern_run(state, target)
  expected = legacy_steps(runs["legacy"], batches)
  model = modern_model(target)
  assert int(model.optimizer.iterations) == 10
  assert_same_steps(expected, keras_steps(model, batches))
  # --with_optimizer --save_path: the .keras file goes on the same way.
  path = str(tmp_path / "migrated.keras")
  modern_checkpoints.save_model(optimizer_state.keras_model(state), path)
  loaded = modern_checkpoints.load_model(path, compile=True)
  assert_same_steps(expected, keras_steps(loaded, batches))
  for how in ("no slots", 1, -1):
    with pytest.raises(AssertionError):
      assert_same_steps(expected, keras_steps(
          optimizer_state.keras_model(broken(state, how)), batches))


def test_modern_run_continues_in_legacy_as_in_modern(runs, batches, tmp_path):
  state = optimizer_state.read_modern_run(runs["modern"])
  assert state.step == 10 and state.training.epoch == 2
  target = str(tmp_path / "legacy")
  optimizer_state.write_legacy_run(state, target)
  expected = keras_steps(modern_model(runs["modern"]), batches)
  assert_same_steps(expected, legacy_steps(target, batches))
  # A compiled .keras file -> one TF1 checkpoint (legacy.migrate_checkpoint
  # --save_path) goes on the same way.
  path, prefix = str(tmp_path / "modern.keras"), str(tmp_path / "hw05")
  modern_checkpoints.save_model(modern_model(runs["modern"]), path)
  optimizer_state.write_legacy_checkpoint(optimizer_state.read_modern_run(path),
                                          prefix)
  assert_same_steps(expected, legacy_steps(None, batches, prefix=prefix))
  for how in ("no slots", 1, -1):
    wrong = str(tmp_path / f"wrong {how}")
    optimizer_state.write_legacy_run(broken(state, how), wrong)
    with pytest.raises(AssertionError):
      assert_same_steps(expected, legacy_steps(wrong, batches))


# ---------------------------------------------------------------- what else carries


def test_migrated_directories_hold_the_run_the_other_port_would(runs, tmp_path):
  """Record, epochs and costs carried; legacy's batch order is the one a legacy
  run of the seed holds after those epochs; Adam's powers are TF1's."""
  modern_state = optimizer_state.read_modern_run(runs["modern"])
  legacy_state = optimizer_state.read_legacy_run(runs["legacy"])
  optimizer_state.write_legacy_run(modern_state, str(tmp_path / "legacy"))
  optimizer_state.write_modern_run(legacy_state, str(tmp_path / "modern"))
  for port, source in (("legacy", runs["modern"]), ("modern", runs["legacy"])):
    with open(os.path.join(source, checkpoint_dir.RECORD_NAME)) as f:
      expected = json.load(f)
    with open(tmp_path / port / checkpoint_dir.RECORD_NAME) as f:
      assert json.load(f) == dict(expected, port=port)
  reader = tf.train.load_checkpoint(str(tmp_path / "legacy" / "model.ckpt-2"))
  ours = checkpoint_dir.TrainingState.from_json(reader.get_tensor("training_state"))
  own = optimizer_state.read_legacy_run(runs["legacy"]).training
  assert ours.epoch_costs == modern_state.training.epoch_costs
  assert ours.data == own.data  # legacy's own order, exactly
  own_reader = tf.train.load_checkpoint(os.path.join(runs["legacy"], "model.ckpt-2"))
  for name in ("beta1_power", "beta2_power", "global_step"):
    assert reader.get_tensor(name) == own_reader.get_tensor(name), name
  assert (optimizer_state.read_modern_run(str(tmp_path / "modern")).training
          == dataclasses.replace(legacy_state.training, data=None))


def test_dropout_goes_on_where_a_modern_run_of_the_seed_would(full_mnist, tmp_path):
  """Each Dropout layer's seed generator stands where a modern run's does."""
  hparams = dataclasses.replace(HPARAMS, keep_prob=0.7, training_epochs=1)
  for port, train in (("legacy", legacy_train), ("modern", modern_train)):
    train.run_training(hparams, fresh_data_sets(full_mnist, SEED, TRAIN_LIMIT),
                       checkpoint_dir=str(tmp_path / port), print_fn=quiet)
  state = optimizer_state.read_legacy_run(str(tmp_path / "legacy"))
  migrated = optimizer_state.keras_model(state)
  own = modern_model(str(tmp_path / "modern"), hparams)
  seeds = [[layer.seed_generator.state.numpy().tolist() for layer in m.layers
            if isinstance(layer, keras.layers.Dropout)] for m in (migrated, own)]
  assert len(seeds[0]) == 4 and seeds[0] == seeds[1]


def test_tf1_power_is_the_graphs_and_underflows_to_zero():
  with tf.Graph().as_default(), v1.Session() as sess:
    power = tf.Variable(np.float32(0.6))
    step = power.assign(power * np.float32(0.6))
    sess.run(power.initializer)
    for _ in range(9):
      sess.run(step)
    assert sess.run(power) == optimizer_state.tf1_power(0.6, 9)
  assert optimizer_state.tf1_power(0.6, 200) == 0


# ---------------------------------------------------------------- refused


def rewrite_checkpoint(prefix, change):
  """Writes the checkpoint at `prefix` again with `change(values)` applied."""
  reader = tf.train.load_checkpoint(prefix)
  values = {name: reader.get_tensor(name)
            for name in reader.get_variable_to_shape_map()}
  change(values)
  for path in [p for p in os.listdir(os.path.dirname(prefix))
               if p.startswith(os.path.basename(prefix) + ".")]:
    os.unlink(os.path.join(os.path.dirname(prefix), path))
  with tf.Graph().as_default(), v1.Session() as sess:
    variables = [tf.Variable(value, name=name) for name, value in values.items()]
    sess.run(v1.variables_initializer(variables))
    v1.train.Saver(variables).save(sess, prefix, write_state=False)


def copy_run(source, target, change=None):
  shutil.copytree(source, target)
  if change:
    rewrite_checkpoint(os.path.join(target, "model.ckpt-2"), change)
  return str(target)


def without_slots(values):
  for name in [n for n in values if "Adam" in n]:
    del values[name]


def misshapen_slot(values):
  values["hidden2/weights/Adam_1"] = values["hidden2/weights/Adam_1"][:, :3]


def one_more_step(values):
  values["global_step"] = values["global_step"] + 1


def test_bad_legacy_checkpoints_are_named(runs, tmp_path):
  """In-process: what each refusal says (the commands' lines are below)."""
  for change, fragment in ((without_slots, "holds no Adam slots"),
                           (misshapen_slot, "hidden2/weights/Adam_1 has shape "
                                            "[256, 3], but hidden2/weights [256, 128]"),
                           (one_more_step, "global_step 11 and beta1_power")):
    run = copy_run(runs["legacy"], tmp_path / change.__name__, change)
    with pytest.raises(errors.UserError, match=re.escape(fragment)):
      optimizer_state.read_legacy_run(run)


@pytest.fixture(scope="module")
def commands(runs, full_mnist, data_dir, tmp_path_factory):
  """The commands as users run them: migrate and resume, migrate back (the
  modern run) and resume; a gradient-descent run; refusals (the others'
  lines are checked in-process above: the commands print a UserError's
  message as one line)."""
  root = tmp_path_factory.mktemp("commands")
  run = functools.partial(run_module, env={input_data.DATA_DIR_ENV: data_dir},
                          timeout=300)
  flags = ("--keep_prob", 1, "--train_limit", TRAIN_LIMIT, "--seed", SEED)
  gd_run = str(root / "gd")
  legacy_train.run_training(dataclasses.replace(HPARAMS, optimizer="gd",
                                                learning_rate=1.0),
                            fresh_data_sets(full_mnist, SEED, TRAIN_LIMIT),
                            checkpoint_dir=gd_run, print_fn=quiet)
  out = {"root": root, "modern_files": sorted(os.listdir(runs["modern"]))}

  # Three imports of TensorFlow in each thread.
  def forward():
    modern = root / "modern"
    out["migrate"] = run("modern.migrate_checkpoint", "--checkpoint",
                         runs["legacy"], "--checkpoint_dir", modern)
    out["modern_resume"] = run("modern.hw05", "--checkpoint_dir", modern, *flags,
                               "--training_epochs", 3)
    out["gd"] = run("modern.migrate_checkpoint", "--checkpoint", gd_run,
                    "--with_optimizer", "--save_path", root / "gd.keras")
    # Refused while the flags are parsed: no TensorFlow.
    out["holds_a_run"] = run("modern.migrate_checkpoint", "--checkpoint",
                             runs["legacy"], "--checkpoint_dir", runs["modern"])

  def back():
    legacy = root / "back"
    out["migrate_back"] = run("legacy.migrate_checkpoint", "--checkpoint",
                              runs["modern"], "--checkpoint_dir", legacy)
    out["legacy_resume"] = run("legacy.hw05", "--checkpoint_dir", legacy, *flags,
                               "--training_epochs", 3)
    source = copy_run(runs["legacy"], root / "without_slots", without_slots)
    out["without_slots"] = run("modern.migrate_checkpoint", "--checkpoint",
                               source, "--checkpoint_dir", root / "refused")

  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    for future in [pool.submit(forward), pool.submit(back)]:
      future.result()
  return out


def test_migrated_runs_resume_in_each_port(commands):
  for name in ("migrate", "modern_resume", "migrate_back", "legacy_resume"):
    assert commands[name].returncode == 0, (name, commands[name].stderr)
    # The record keeps the machine the run started on: this process, whose
    # TensorFlow uses more threads than the commands' --threads=1.
    lines = commands[name].stderr.splitlines()
    assert all(line.startswith("note: --checkpoint_dir ") and
               "will not end bit-identical" in line for line in lines), lines
  assert "python -m modern.hw05 --checkpoint_dir" in commands["migrate"].stdout
  assert "python -m legacy.hw05 --checkpoint_dir" in commands["migrate_back"].stdout
  # Each resumed run prints only the epochs still to go.
  for name, epoch in (("modern_resume", 3), ("legacy_resume", 3)):
    lines = summary_lines(commands[name].stdout)
    assert [line[:11] for line in lines[:-1]] == [f"Epoch: {epoch:04d}"], lines


def test_gradient_descent_says_it_migrates_the_step_count_alone(commands):
  result = commands["gd"]
  assert result.returncode == 0, result.stderr
  assert "gradient descent" in result.stdout and "global_step 10 alone" in result.stdout
  model = keras.saving.load_model(commands["root"] / "gd.keras")
  assert isinstance(model.optimizer, keras.optimizers.SGD)
  assert int(model.optimizer.iterations) == 10


def test_refusals_are_one_line_and_write_nothing(commands, runs):
  assert_one_error_line(commands["without_slots"], "holds no Adam slots",
                        "without --with_optimizer")
  assert_one_error_line(commands["holds_a_run"], "already holds a run")
  assert not os.path.exists(commands["root"] / "refused")
  assert sorted(os.listdir(runs["modern"])) == commands["modern_files"]
  leftovers = [p for p in os.listdir(commands["root"]) if p.startswith(".")]
  assert not leftovers, leftovers
