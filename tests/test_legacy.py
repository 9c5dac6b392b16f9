"""Tests of legacy/: the TF1 graph-mode port of the two homework scripts.

Every graph is built in its own tf.Graph and run in its own v1.Session;
nothing here changes TensorFlow's process-wide behaviour. The numbers are
checked against the numpy re-implementation in tests/numpy_reference.py
(forward pass, softmax cross-entropy, backprop of the MLP, TF1's Adam
update), not against outputs copied from a run.
"""

from concurrent import futures
import contextlib
import dataclasses
import os
import re
import subprocess

import numpy as np
from numpy.testing import assert_allclose
import pytest
import tensorflow as tf

from common import errors
from common import hparams as hp
from common import input_data
from legacy import mlp
from legacy import train
from helpers import ACCURACY_LINE
from helpers import EPOCH_LINE
from helpers import REPO_ROOT
from helpers import assert_one_error_line
from helpers import fresh_data_sets
from helpers import run_module
import numpy_reference as nr

v1 = tf.compat.v1

NUM_TEST_IMAGES = 10000

# ------------------------------------------------------------ helpers


@contextlib.contextmanager
def graph_session(seed=0):
  """A fresh graph (graph-level seed set) and a Session on it."""
  graph = tf.Graph()
  with graph.as_default():
    v1.set_random_seed(seed)
    with v1.Session(graph=graph) as sess:
      yield graph, sess


def variable_values(sess, graph):
  """{"hidden1/weights": value, ...} for the graph's trainable variables."""
  variables = graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)
  return {v.op.name: value for v, value in zip(variables, sess.run(variables))}


def as_params(values, num_hidden):
  """The [(weights, biases), ...] list, in layer order, from variable values."""
  return [(values[f"{name}/weights"].astype(np.float64),
           values[f"{name}/biases"].astype(np.float64))
          for name in hp.layer_names(num_hidden)]


def random_batch(rng, size):
  images = rng.uniform(0.0, 1.0, (size, hp.IMAGE_PIXELS)).astype(np.float32)
  labels = np.eye(hp.NUM_CLASSES, dtype=np.float32)[
      rng.integers(0, hp.NUM_CLASSES, size)]
  return images, labels


def dropout_scopes(graph):
  """The layer scopes ("hidden1", ...) that hold a forward dropout op."""
  return {op.name.split("/")[0] for op in graph.get_operations()
          if op.name.split("/")[1:2] == ["dropout"]}


def random_ops_in_dropout(graph):
  return [op for op in graph.get_operations()
          if op.type == "RandomUniform"
          and op.name.split("/")[1:2] == ["dropout"]]


def parse_output(stdout, epochs):
  """Checks the lines' format; returns (epoch costs, accuracy string)."""
  lines = stdout.splitlines()
  assert len(lines) == epochs + 1, stdout
  costs = []
  for number, line in enumerate(lines[:-1], start=1):
    match = EPOCH_LINE.match(line)
    assert match, line
    assert int(match.group(1)) == number
    costs.append(float(match.group(2)))
  match = ACCURACY_LINE.match(lines[-1])
  assert match, lines[-1]
  accuracy = match.group(1)
  # print() of a numpy float32: the shortest repr that round-trips.
  assert str(np.float32(float(accuracy))) == accuracy
  # A fraction of the 10,000 test images.
  assert 0.0 <= float(accuracy) <= 1.0
  assert abs(float(accuracy) * NUM_TEST_IMAGES
             - round(float(accuracy) * NUM_TEST_IMAGES)) < 1e-3
  return costs, accuracy


# ------------------------------------------------------------ inference


@pytest.mark.parametrize("hidden_units", [(256, 128, 256), (7,), (3, 5),
                                          (9, 1, 4, 6)])
def test_inference_shapes_and_variables(hidden_units):
  with graph_session() as (graph, sess):
    images, _ = train.placeholder_inputs()
    logits = mlp.inference(images, hidden_units)
    assert logits.shape.as_list() == [None, hp.NUM_CLASSES]
    sess.run(v1.global_variables_initializer())
    batch, _ = random_batch(np.random.default_rng(0), 3)
    assert sess.run(logits, {images: batch}).shape == (3, hp.NUM_CLASSES)

    sizes = (hp.IMAGE_PIXELS, *hidden_units, hp.NUM_CLASSES)
    names = [f"hidden{i}" for i in range(1, len(hidden_units) + 1)]
    names.append("softmax_linear")
    expected = {}
    for name, fan_in, fan_out in zip(names, sizes[:-1], sizes[1:]):
      expected[f"{name}/weights"] = (fan_in, fan_out)
      expected[f"{name}/biases"] = (fan_out,)
    variables = graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)
    assert {v.op.name: tuple(v.shape.as_list()) for v in variables} == expected
    assert len(variables) == len(expected)  # no duplicate names


def test_placeholders():
  with graph_session():
    images, labels = train.placeholder_inputs()
    assert images.op.name == "X" and labels.op.name == "Y"
    assert images.dtype == tf.float32 and labels.dtype == tf.float32
    assert images.shape.as_list() == [None, 784]
    assert labels.shape.as_list() == [None, 10]


def _initial_values(init, bias_init, hidden_units=(256, 128, 256)):
  with graph_session(seed=1) as (graph, sess):
    images, _ = train.placeholder_inputs()
    mlp.inference(images, hidden_units, init=init, bias_init=bias_init)
    sess.run(v1.global_variables_initializer())
    values = variable_values(sess, graph)
  weights = {k: v for k, v in values.items() if k.endswith("/weights")}
  biases = {k: v for k, v in values.items() if k.endswith("/biases")}
  return weights, biases


def _all(values):
  return np.concatenate([v.ravel() for v in values.values()]).astype(np.float64)


def test_uniform_initializer_statistics():
  limit, bias_limit = 0.5, 0.25
  weights, biases = _initial_values(f"uniform:{limit}", f"uniform:{bias_limit}")
  for samples, lim, rtol in ((_all(weights), limit, 0.01),
                             (_all(biases), bias_limit, 0.15)):
    # U(-L, L): inside [-L, L], reaching both ends, mean 0, variance L^2/3.
    assert np.all(np.abs(samples) <= lim)
    assert samples.min() < -0.95 * lim and samples.max() > 0.95 * lim
    sigma = lim / np.sqrt(3.0)
    assert_allclose(samples.mean(), 0.0, rtol=0,
                    atol=5 * sigma / np.sqrt(samples.size))
    assert_allclose(samples.var(), lim**2 / 3, rtol=rtol, atol=0)


def test_normal_initializer_statistics():
  stddev, bias_stddev = 0.3, 2.0
  weights, biases = _initial_values(f"normal:{stddev}", f"normal:{bias_stddev}")
  samples = _all(weights)
  assert_allclose(samples.std(), stddev, rtol=0.01, atol=0)
  assert_allclose(samples.mean(), 0.0, rtol=0,
                  atol=5 * stddev / np.sqrt(samples.size))
  # Not truncated, and not a uniform of the same spread: about 4.55% of
  # N(0, S) lies beyond 2S (a uniform of std S ends at 1.73 S).
  assert_allclose(np.mean(np.abs(samples) > 2 * stddev), 0.0455, rtol=0,
                  atol=0.003)
  bias_samples = _all(biases)  # only 650 values: looser bounds
  assert_allclose(bias_samples.std(), bias_stddev, rtol=0.15, atol=0)
  assert_allclose(bias_samples.mean(), 0.0, rtol=0,
                  atol=5 * bias_stddev / np.sqrt(bias_samples.size))


def test_zeros_initializer():
  weights, biases = _initial_values("zeros", "zeros")
  assert not np.any(_all(weights)) and not np.any(_all(biases))


def test_xavier_initializer_limits_per_layer():
  hidden_units = (256, 128, 256)
  weights, biases = _initial_values("xavier", "zeros", hidden_units)
  sizes = (hp.IMAGE_PIXELS, *hidden_units, hp.NUM_CLASSES)
  for name, fan_in, fan_out in zip(hp.layer_names(3), sizes[:-1], sizes[1:]):
    value = weights[f"{name}/weights"].astype(np.float64)
    limit = np.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform
    assert np.all(np.abs(value) <= limit), name
    assert np.abs(value).max() > 0.95 * limit, name
    assert_allclose(value.var(), limit**2 / 3, rtol=0.1, atol=0, err_msg=name)
  assert not np.any(_all(biases))


def test_xavier_is_not_a_bias_initializer():
  with graph_session():
    images, _ = train.placeholder_inputs()
    with pytest.raises(ValueError):
      mlp.inference(images, (4,), bias_init="xavier")


# ------------------------------------------------------------ dropout


def test_no_dropout_op_without_keep_prob():
  with graph_session() as (graph, _):
    images, _ = train.placeholder_inputs()
    mlp.inference(images, (5, 4), keep_prob=None, dropout_layers="all")
    assert not dropout_scopes(graph)
    assert not [op for op in graph.get_operations() if "dropout" in op.name]


def test_hw04_graph_has_no_dropout_and_hw05_graph_has_four():
  hw04 = train.build_model(hp.SCRIPTS["hw04"])
  assert hw04.keep_prob is None
  assert not [op for op in hw04.graph.get_operations() if "dropout" in op.name]
  placeholders = {op.name for op in hw04.graph.get_operations()
                  if op.type == "Placeholder"}
  assert placeholders == {"X", "Y"}

  hw05 = train.build_model(hp.SCRIPTS["hw05"])
  assert hw05.keep_prob is not None
  assert hw05.keep_prob.shape.as_list() == []
  assert dropout_scopes(hw05.graph) == {"hidden1", "hidden2", "hidden3",
                                        "softmax_linear"}


@pytest.mark.parametrize("hidden_units,dropout_layers,expected", [
    ((5, 4), "hidden", {"hidden1", "hidden2"}),
    ((5, 4), "all", {"hidden1", "hidden2", "softmax_linear"}),
    ((5, 4), "input_hidden", {"input", "hidden1", "hidden2"}),
    ((3, 3, 3), "hidden", {"hidden1", "hidden2", "hidden3"}),
    ((6,), "all", {"hidden1", "softmax_linear"}),
])
def test_one_dropout_per_layer(hidden_units, dropout_layers, expected):
  with graph_session() as (graph, _):
    images, _ = train.placeholder_inputs()
    keep_prob = v1.placeholder(tf.float32, [])
    # Normal initializers: the only RandomUniform ops left are dropout's.
    mlp.inference(images, hidden_units, init="normal:1.0", bias_init="zeros",
                  keep_prob=keep_prob, dropout_layers=dropout_layers)
    assert dropout_scopes(graph) == expected
    assert len(random_ops_in_dropout(graph)) == len(expected)


@pytest.mark.parametrize("dropout_layers", hp.DROPOUT_LAYERS)
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_dropout_is_identity_at_keep_prob_one(dropout_layers, activation):
  hidden_units = (6, 5)
  with graph_session() as (graph, sess):
    images, _ = train.placeholder_inputs()
    keep_prob = v1.placeholder(tf.float32, [])
    logits = mlp.inference(images, hidden_units, activation=activation,
                           init="uniform:0.2", keep_prob=keep_prob,
                           dropout_layers=dropout_layers)
    sess.run(v1.global_variables_initializer())
    batch, _ = random_batch(np.random.default_rng(1), 8)
    params = as_params(variable_values(sess, graph), len(hidden_units))
    expected = nr.forward(params, batch, activation)[-1]
    assert_allclose(sess.run(logits, {images: batch, keep_prob: 1.0}),
                    expected, rtol=1e-5, atol=1e-5)
    # ... and not at 0.5, or the comparison above would prove nothing.
    dropped = sess.run(logits, {images: batch, keep_prob: 0.5})
    assert np.max(np.abs(dropped - expected)) > 0.1


@pytest.mark.parametrize("dropout_layers", ["hidden", "all"])
def test_dropout_comes_after_the_activation(dropout_layers):
  with graph_session() as (graph, sess):
    images, _ = train.placeholder_inputs()
    keep_prob = v1.placeholder(tf.float32, [])
    logits = mlp.inference(images, (6, 5), activation="sigmoid",
                           keep_prob=keep_prob, dropout_layers=dropout_layers)
    sess.run(v1.global_variables_initializer())
    batch, _ = random_batch(np.random.default_rng(2), 4)
    # 1 - 1e-9 rounds to a drop rate of 1 in float32: every unit is dropped.
    # Dropped after the sigmoid, a hidden unit gives 0 (before it, 0.5), so
    # the logits are the last biases, or 0 when the logits are dropped too.
    out = sess.run(logits, {images: batch, keep_prob: 1e-9})
    biases = variable_values(sess, graph)["softmax_linear/biases"]
    expected = (np.zeros_like(out) if dropout_layers == "all"
                else np.broadcast_to(biases, out.shape))
    assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------ loss, evaluation


def test_loss_is_mean_softmax_cross_entropy():
  rng = np.random.default_rng(3)
  logits_value = rng.normal(0.0, 5.0, (16, 10)).astype(np.float32)
  logits_value[0, 3] = 200.0  # large logits must not overflow
  logits_value[1] = -150.0
  _, labels_value = random_batch(rng, 16)
  with graph_session() as (_, sess):
    logits = v1.placeholder(tf.float32, [None, 10])
    labels = v1.placeholder(tf.float32, [None, 10])
    cost = mlp.loss(logits, labels)
    assert cost.shape.as_list() == []
    value = sess.run(cost, {logits: logits_value, labels: labels_value})
  expected = nr.mean_cost(logits_value.astype(np.float64), labels_value)
  assert_allclose(value, expected, rtol=1e-5, atol=1e-5)


def test_evaluation_is_argmax_accuracy():
  rng = np.random.default_rng(4)
  logits_value = rng.normal(size=(50, 10)).astype(np.float32)
  _, labels_value = random_batch(rng, 50)
  # Make about half the rows right, so the accuracy is not near 0.1.
  right = rng.random(50) < 0.5
  logits_value[right, labels_value[right].argmax(1)] = 10.0
  with graph_session() as (_, sess):
    logits = v1.placeholder(tf.float32, [None, 10])
    labels = v1.placeholder(tf.float32, [None, 10])
    accuracy = sess.run(mlp.evaluation(logits, labels),
                        {logits: logits_value, labels: labels_value})
  expected = nr.accuracy(logits_value, labels_value)
  assert 0.3 < expected < 0.8
  assert_allclose(accuracy, expected, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------ optimizer steps


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
def test_gradient_descent_step_matches_numpy_backprop(activation):
  hidden_units, learning_rate = (5, 4), 0.5
  rng = np.random.default_rng(5)
  batch, batch_labels = random_batch(rng, 8)
  with graph_session() as (graph, sess):
    images, labels = train.placeholder_inputs()
    # Small weights keep the units out of saturation: real gradients.
    logits = mlp.inference(images, hidden_units, activation=activation,
                           init="uniform:0.1", bias_init="normal:0.5")
    cost = mlp.loss(logits, labels)
    train_op = mlp.training(cost, "gd", learning_rate)
    sess.run(v1.global_variables_initializer())
    before = variable_values(sess, graph)
    _, cost_value = sess.run([train_op, cost],
                             {images: batch, labels: batch_labels})
    after = variable_values(sess, graph)
    assert sess.run(v1.train.get_global_step()) == 1

  params = as_params(before, len(hidden_units))
  expected_cost, grads = nr.cost_and_grads(params, batch, batch_labels,
                                           activation)
  assert_allclose(cost_value, expected_cost, rtol=1e-5, atol=1e-6)
  for name, (weights, biases), (d_weights, d_biases) in zip(
      hp.layer_names(len(hidden_units)), params, grads):
    for suffix, value, grad in (("weights", weights, d_weights),
                                ("biases", biases, d_biases)):
      key = f"{name}/{suffix}"
      step = after[key] - before[key]
      assert_allclose(step, -learning_rate * grad, rtol=1e-3, atol=2e-7,
                      err_msg=key)
      assert_allclose(after[key], value - learning_rate * grad, rtol=1e-5,
                      atol=1e-6, err_msg=key)
  # The comparison is only worth something if the step is not negligible.
  largest_step = learning_rate * max(np.abs(g).max() for pair in grads
                                     for g in pair)
  assert largest_step > 1e-2


@pytest.mark.parametrize("beta1,beta2,epsilon,atol", [
    (0.6, 0.8, 0.1, 1e-6),    # hw05's settings
    # TF1's defaults: m / sqrt(v) is about sign(g), so a float32 gradient
    # near zero can move a weight by a visible fraction of lr.
    (0.9, 0.999, 1e-8, 1e-5),
])
def test_adam_steps_match_numpy_tf1_adam(beta1, beta2, epsilon, atol):
  hidden_units, learning_rate, num_steps = (5, 4), 0.05, 4
  hparams = hp.HParams(optimizer="adam", learning_rate=learning_rate,
                       beta1=beta1, beta2=beta2, epsilon=epsilon,
                       hidden_units=hidden_units, init="uniform:0.1",
                       bias_init="normal:0.5", keep_prob=1.0, seed=0)
  rng = np.random.default_rng(6)
  batches = [random_batch(rng, 8) for _ in range(num_steps)]
  model = train.build_model(hparams)
  tf_history = []
  with v1.Session(graph=model.graph) as sess:
    sess.run(model.init_op)
    initial = variable_values(sess, model.graph)
    for images, labels in batches:
      _, cost = sess.run([model.train_op, model.cost],
                         train.fill_feed_dict(model, images, labels))
      tf_history.append((cost, variable_values(sess, model.graph)))

  np_history = nr.train_steps(
      as_params(initial, 2), batches,
      nr.Adam(learning_rate, beta1, beta2, epsilon), "sigmoid")
  names = hp.layer_names(len(hidden_units))
  for step, ((tf_cost, tf_values), (np_cost, np_params)) in enumerate(
      zip(tf_history, np_history), start=1):
    assert_allclose(tf_cost, np_cost, rtol=1e-5, atol=1e-6,
                    err_msg=f"step {step}")
    for name, (weights, biases) in zip(names, np_params):
      for key, expected in ((f"{name}/weights", weights),
                            (f"{name}/biases", biases)):
        assert_allclose(tf_values[key], expected, rtol=1e-5, atol=atol,
                        err_msg=f"{key} after step {step}")
  # Steps of about lr, far above the tolerance: a wrong step size shows.
  moved = max(np.abs(tf_history[0][1][k] - initial[k]).max() for k in initial)
  assert moved > learning_rate / 4


# ------------------------------------------------------------ training loop


def test_run_training_prints_mean_cost_of_each_epoch(full_mnist):
  """Per-epoch lines and the accuracy line, checked against numpy.

  A learning rate of 1e-30 leaves every float32 weight unchanged, so each
  step's cost is the returned weights' cost on that step's batch. The batches
  are replayed with a DataSet of the same seed. 300 examples in batches of
  64 make 4 steps an epoch, and batches that straddle the epoch end.
  """
  hparams = hp.HParams(learning_rate=1e-30, training_epochs=3, batch_size=64,
                       hidden_units=(16, 8), seed=7)
  lines = []
  result = train.run_training(
      hparams, fresh_data_sets(full_mnist, seed=7, train_limit=300),
      print_fn=lines.append)
  costs, accuracy = parse_output("\n".join(lines), hparams.training_epochs)

  replay = fresh_data_sets(full_mnist, seed=7, train_limit=300)
  params = as_params(result.weights, 2)
  expected = []
  for _ in range(hparams.training_epochs):
    step_costs = [nr.mean_cost(nr.forward(params, images)[-1], labels)
                  for images, labels in (replay.train.next_batch(64)
                                         for _ in range(300 // 64))]
    expected.append(np.mean(step_costs))
  # The printed costs have nine decimals; float32 costs are good to ~1e-6.
  assert_allclose(costs, expected, rtol=1e-6, atol=1e-5)
  assert_allclose(result.epoch_costs, expected, rtol=1e-6, atol=1e-5)
  # The epochs' batches differ, so must their means.
  assert len(set(costs)) == len(costs)

  test_logits = nr.forward(params, replay.test.images)[-1]
  expected_accuracy = nr.accuracy(test_logits, replay.test.labels)
  # float32 and float64 logits may break a near-tie differently: 2 images.
  assert abs(result.accuracy - expected_accuracy) <= 2e-4
  assert accuracy == str(np.float32(result.accuracy))


def test_same_seed_repeats_and_another_seed_differs(full_mnist):
  def run(seed):
    # Seeded as the command line seeds it: the graph and the batch order.
    hparams = dataclasses.replace(hp.SCRIPTS["hw05"], seed=seed,
                                  train_limit=300, training_epochs=2,
                                  hidden_units=(32, 16, 32))
    lines = []
    train.run_training(
        hparams, fresh_data_sets(full_mnist, seed=seed, train_limit=300),
        print_fn=lines.append)
    return lines

  first = run(3)
  parse_output("\n".join(first), 2)
  assert run(3) == first
  assert run(4) != first


# numpy warns when the learning rate is cast to float32: that is the point.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_non_finite_cost_stops_at_the_first_bad_step(full_mnist):
  # A learning rate beyond float32's range makes the first step turn the
  # weights into inf/nan; the first step's cost (initial weights) is finite,
  # so the second step's is the first non-finite one.
  hparams = hp.HParams(learning_rate=1e39, training_epochs=2, seed=1,
                       hidden_units=(16, 8))
  lines = []
  with pytest.raises(errors.NonFiniteCostError) as raised:
    train.run_training(
        hparams, fresh_data_sets(full_mnist, seed=1, train_limit=1000),
        print_fn=lines.append)
  assert (raised.value.epoch, raised.value.step) == (1, 2)
  assert "epoch 1, step 2" in str(raised.value)
  assert raised.value.exit_status == 3
  assert not lines  # no epoch finished


# ------------------------------------------------------------ command line


def test_same_seed_prints_same_lines_in_two_processes(data_dir):
  args = ("--train_limit=1000", "--training_epochs=2", "--seed=11")
  env = {input_data.DATA_DIR_ENV: data_dir}
  # Side by side: the import of TensorFlow takes most of each run's time.
  with futures.ThreadPoolExecutor(2) as pool:
    runs = list(pool.map(
        lambda _: run_module("legacy.hw05", *args, env=env, timeout=300),
        range(2)))
  for run in runs:
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
  parse_output(runs[0].stdout, 2)
  assert runs[0].stdout == runs[1].stdout


def test_diverging_run_exits_3_naming_epoch_and_step(data_dir):
  # ReLU units with a huge step overflow float32 within a few steps.
  run = run_module("legacy.hw04", "--activation=relu", "--learning_rate=1e10",
                   "--train_limit=1000", "--seed=1",
                   env={input_data.DATA_DIR_ENV: data_dir}, timeout=300)
  line = assert_one_error_line(run, status=3)
  assert re.match(r"^error: .*epoch 1, step \d+\b", line), line


@pytest.mark.parametrize("target", ["legacy-hw04", "legacy-hw05"])
def test_make_target_smoke(target, data_dir):
  env = dict(os.environ, **{input_data.DATA_DIR_ENV: data_dir})
  # A stale venv stamp would make `make` rebuild .venv (offline: destroy it).
  stamp = subprocess.run(
      ["make", "--question", ".venv/.requirements-installed"],
      cwd=REPO_ROOT, env=env, capture_output=True)
  assert stamp.returncode == 0, "the .venv stamp is stale: run `make venv`"
  run = subprocess.run(
      ["make", target, "ARGS=--train_limit 500 --training_epochs 1 --seed 1"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr
  assert run.stderr == ""
  parse_output(run.stdout, 1)


@pytest.mark.slow
def test_hw04_full_run_reaches_the_reports_accuracy(data_dir):
  run = run_module("legacy.hw04", env={input_data.DATA_DIR_ENV: data_dir},
                   timeout=1800)
  assert run.returncode == 0, run.stderr
  assert run.stderr == ""
  print(run.stdout)  # the run's numbers, for `pytest -rP`
  costs, accuracy = parse_output(run.stdout, 15)
  assert float(accuracy) >= 0.955, run.stdout
  # "Stable learning": in the report the cost falls every epoch.
  assert all(later < earlier for earlier, later in zip(costs, costs[1:])), costs
