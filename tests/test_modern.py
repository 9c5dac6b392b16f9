"""Tests of modern/ (issue 4): the Keras port of the two homework scripts.

The numbers are checked against the numpy re-implementation of the same maths
in tests/numpy_reference.py (forward pass, softmax cross-entropy, backprop,
SGD and TF1's Adam), never against outputs copied from a run. Only the public functions are used:
mlp.inference/loss/training/evaluation, train.build_model, model_weights,
run_training and the command line.
"""

import concurrent.futures
import dataclasses
import functools
import os
import subprocess

import keras
import numpy as np
from numpy.testing import assert_allclose
import pytest
import tensorflow as tf

from common import errors
from common import hparams as hp
from common import input_data
from modern import checkpoints
from modern import mlp
from modern import port
from modern import train
from helpers import ACCURACY_LINE
from helpers import EPOCH_LINE
from helpers import REPO_ROOT
from helpers import assert_one_error_line
from helpers import run_module
from helpers import summary_lines
import helpers
import numpy_reference as nr

LAYERS = ("hidden1", "hidden2", "hidden3", "softmax_linear")
SIZES = (784, 256, 128, 256, 10)

# The small CLI runs: hw05, so that dropout and Adam are exercised.
SMALL_RUN = ("--train_limit", 1000, "--training_epochs", 2)


# ---------------------------------------------------------------- helpers


def dense_params(model):
  """[(kernel, bias), ...] of the model's Dense layers, in float64."""
  return [(layer.kernel.numpy().astype(np.float64),
           layer.bias.numpy().astype(np.float64))
          for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def result_params(weights):
  """[(kernel, bias), ...] from TrainingResult.weights ("hidden1/kernel", ...)."""
  return [(weights[f"{name}/kernel"].astype(np.float64),
           weights[f"{name}/bias"].astype(np.float64)) for name in LAYERS]


# Datasets of the first `train_size` training and `test_size` test images.
small_data_sets = functools.partial(helpers.small_data_sets, test_size=500,
                                    seed=0)


def run_captured(hparams, data_sets, **kwargs):
  lines = []
  result = train.run_training(hparams, data_sets, print_fn=lines.append, **kwargs)
  return result, lines


@pytest.fixture(scope="module")
def mnist(full_mnist):
  return helpers.fresh_data_sets(full_mnist, seed=0)


@pytest.fixture(scope="module")
def batch(mnist):
  """100 training images and one-hot labels."""
  return mnist.train.images[:100], mnist.train.labels[:100]


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("keep_prob, dropout_layers, dropout_after", [
    (1.0, "all", ()),  # keep_prob 1 builds no Dropout at all, as legacy
    (1.0, "hidden", ()),
    (0.7, "hidden", LAYERS[:3]),
    (0.7, "all", LAYERS),
    (0.5, "all", LAYERS),
    (0.7, "input_hidden", ("input", *LAYERS[:3])),
])
def test_layers_sizes_activations_and_dropout(keep_prob, dropout_layers,
                                              dropout_after):
  model = mlp.inference((256, 128, 256), rate=1 - keep_prob,
                        dropout_layers=dropout_layers)
  expected = [("Dropout", None)] if "input" in dropout_after else []
  for name in LAYERS:
    expected.append(("Dense", name))
    if name in dropout_after:
      expected.append(("Dropout", None))
  assert [(type(layer).__name__, layer.name if isinstance(
      layer, keras.layers.Dense) else None) for layer in model.layers] == expected

  dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
  assert [tuple(layer.kernel.shape) for layer in dense] == list(zip(SIZES, SIZES[1:]))
  assert [tuple(layer.bias.shape) for layer in dense] == [(n,) for n in SIZES[1:]]
  assert [layer.activation for layer in dense] == (
      [keras.activations.sigmoid] * 3 + [keras.activations.linear])
  for layer in model.layers:
    if isinstance(layer, keras.layers.Dropout):
      assert_allclose(layer.rate, 1 - keep_prob, rtol=0, atol=1e-12)
  assert tuple(model.input_shape) == (None, 784)
  assert tuple(model.output_shape) == (None, 10)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_other_activations_reach_the_hidden_layers_only(activation):
  model = mlp.inference((32, 16), activation=activation)
  assert [layer.activation for layer in model.layers] == [
      keras.activations.get(activation)] * 2 + [keras.activations.linear]


def test_forward_pass_matches_numpy_and_dropout_acts_only_in_training(batch):
  images, _ = batch
  keras.utils.set_random_seed(1)
  model = mlp.inference((256, 128, 256), rate=1 - 0.7, dropout_layers="all")
  expected = nr.forward(dense_params(model), images)[-1]
  assert_allclose(model(images, training=False).numpy(), expected,
                  rtol=1e-4, atol=1e-4)
  # With dropout on the logits too, about 30% of them are zeroed in training.
  zeros = np.mean(model(images, training=True).numpy() == 0)
  assert 0.25 < zeros < 0.35, zeros


def kernels_and_biases(init, bias_init):
  keras.utils.set_random_seed(2)
  model = mlp.inference((256, 128, 256), init=init, bias_init=bias_init)
  params = dense_params(model)
  return [k for k, _ in params], [b for _, b in params]


def check_moments(values, variance, fourth_moment, sigmas=5):
  """Mean 0 and the given variance, within `sigmas` standard errors."""
  values = values.ravel()
  n = values.size
  assert abs(values.mean()) < sigmas * np.sqrt(variance / n), values.mean()
  se_variance = np.sqrt((fourth_moment - variance ** 2) / n)
  assert abs(np.mean(values ** 2) - variance) < sigmas * se_variance, (
      np.mean(values ** 2), variance)


@pytest.mark.parametrize("limit", [1.0, 0.05])
def test_uniform_initializer_statistics(limit):
  kernels, biases = kernels_and_biases(f"uniform:{limit}", f"uniform:{limit}")
  for values in kernels + [np.concatenate(biases)]:
    assert np.all(np.abs(values) <= limit)
    check_moments(values, limit ** 2 / 3, limit ** 4 / 5)
  assert np.abs(kernels[0]).max() > 0.99 * limit  # spans the whole range


@pytest.mark.parametrize("stddev", [1.0, 0.01])
def test_normal_initializer_statistics(stddev):
  kernels, biases = kernels_and_biases(f"normal:{stddev}", f"normal:{stddev}")
  for values in kernels + [np.concatenate(biases)]:
    check_moments(values, stddev ** 2, 3 * stddev ** 4)
  # Not truncated, as tf.random_normal: 0.27% of 200,704 values lie past 3 sd.
  assert np.mean(np.abs(kernels[0]) > 3 * stddev) > 0.001


def test_xavier_and_zeros_initializers():
  kernels, biases = kernels_and_biases("xavier", "zeros")
  for kernel in kernels:
    fan_in, fan_out = kernel.shape
    limit = np.sqrt(6 / (fan_in + fan_out))
    assert np.all(np.abs(kernel) <= limit)
    check_moments(kernel, limit ** 2 / 3, limit ** 4 / 5)
  for bias in biases:
    assert np.all(bias == 0)
  kernels, _ = kernels_and_biases("zeros", "normal:1.0")
  assert all(np.all(kernel == 0) for kernel in kernels)


def test_every_layer_draws_its_own_initial_values():
  kernels, biases = kernels_and_biases("uniform:1.0", "normal:1.0")
  # hidden1 and hidden3 have the same bias shape: a shared seed would show.
  assert not np.allclose(biases[0], biases[2])
  assert not np.allclose(kernels[0][:128], kernels[2])


def test_optimizers_carry_tf1_settings():
  adam = mlp.training("adam", 0.9, 0.6, 0.8, 0.1)
  assert isinstance(adam, keras.optimizers.Adam)
  assert (adam.beta_1, adam.beta_2, adam.epsilon) == (0.6, 0.8, 0.1)
  assert_allclose(float(adam.learning_rate), 0.9, rtol=1e-7, atol=0)
  # TF1's AdamOptimizer default epsilon, not Keras' 1e-7.
  assert mlp.training("adam").epsilon == 1e-8
  assert (mlp.training("adam").beta_1, mlp.training("adam").beta_2) == (0.9, 0.999)
  sgd = mlp.training("gd", learning_rate=0.25)
  assert isinstance(sgd, keras.optimizers.SGD)
  assert (sgd.momentum, sgd.nesterov) == (0.0, False)
  assert_allclose(float(sgd.learning_rate), 0.25, rtol=1e-7, atol=0)


def test_build_model_wires_the_script_defaults():
  hw04 = train.build_model(hp.SCRIPTS["hw04"])
  assert isinstance(hw04.optimizer, keras.optimizers.SGD)
  assert_allclose(float(hw04.optimizer.learning_rate), 1.0, rtol=0, atol=0)
  assert not any(isinstance(layer, keras.layers.Dropout) for layer in hw04.layers)

  hw05 = train.build_model(hp.SCRIPTS["hw05"])
  opt = hw05.optimizer
  assert isinstance(opt, keras.optimizers.Adam)
  assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.6, 0.8, 0.1)
  assert_allclose(float(opt.learning_rate), 0.9, rtol=1e-7, atol=0)
  rates = [layer.rate for layer in hw05.layers
           if isinstance(layer, keras.layers.Dropout)]
  assert_allclose(rates, [0.3] * 4, rtol=0, atol=1e-12)  # "all" is hw05's default

  adam_default = train.build_model(hp.HParams(optimizer="adam"))
  assert adam_default.optimizer.epsilon == 1e-8
  # The weights TrainingResult reports, name for name with legacy's.
  assert sorted(train.model_weights(hw05)) == sorted(
      f"{name}/{kind}" for name in LAYERS for kind in ("kernel", "bias"))


# ---------------------------------------------------------------- numerics


def test_loss_is_mean_softmax_cross_entropy_on_logits():
  rng = np.random.default_rng(0)
  logits = rng.normal(scale=30, size=(64, 10)).astype(np.float32)  # large too
  labels = input_data.dense_to_one_hot(rng.integers(0, 10, size=64))
  assert_allclose(float(mlp.loss()(labels, logits)),
                  nr.softmax_cross_entropy(logits, labels).mean(),
                  rtol=1e-6, atol=1e-5)


def test_accuracy_metric_is_argmax_agreement():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(1000, 10)).astype(np.float32)
  labels = input_data.dense_to_one_hot(rng.integers(0, 10, size=1000))
  metric = mlp.evaluation()
  metric.update_state(labels, logits)
  expected = np.mean(logits.argmax(1) == labels.argmax(1))
  assert 0.05 < expected < 0.2  # random logits: a real mix of hits and misses
  assert_allclose(float(metric.result()), expected, rtol=1e-6, atol=1e-7)


OPTIMIZER_CASES = {
    "sgd": hp.HParams(optimizer="gd", learning_rate=0.5),
    "adam_tf1_defaults": hp.HParams(optimizer="adam", learning_rate=0.01),
    "adam_hw05": hp.HParams(optimizer="adam", learning_rate=0.9, beta1=0.6,
                            beta2=0.8, epsilon=0.1),
}


@pytest.mark.parametrize("case, steps", [
    ("sgd", 1), ("adam_tf1_defaults", 1),
    ("adam_hw05", 4),  # several steps: bias correction beta^t changes each step
])
def test_optimizer_steps_match_numpy(case, steps, batch):
  """Each step: the loss and gradients against numpy backprop, then the update
  against numpy's SGD/Adam applied to the same gradients. With epsilon 1e-8,
  Adam turns float32 noise in gradients near 3e-7 into visible weight
  differences, so the update is checked from Keras' own gradients."""
  hparams = OPTIMIZER_CASES[case]
  images, labels = batch
  keras.utils.set_random_seed(3)
  model = mlp.inference(hparams.hidden_units)  # rate 0: no dropout
  optimizer = mlp.training(hparams.optimizer, hparams.learning_rate,
                           hparams.beta1, hparams.beta2, hparams.epsilon)
  cost_fn = mlp.loss()
  reference = nr.optimizer(hparams)
  for step in range(1, steps + 1):
    params = dense_params(model)
    with tf.GradientTape() as tape:
      cost = cost_fn(labels, model(images, training=True))
    grads = tape.gradient(cost, model.trainable_variables)
    optimizer.apply(grads, model.trainable_variables)

    expected_cost, expected_grads = nr.cost_and_grads(params, images, labels)
    assert_allclose(float(cost), expected_cost, rtol=1e-5, atol=1e-6,
                    err_msg=f"step {step}")
    keras_grads = [g.numpy().astype(np.float64) for g in grads]
    assert_allclose(np.concatenate([g.ravel() for g in keras_grads]),
                    np.concatenate([g.ravel() for pair in expected_grads
                                    for g in pair]),
                    rtol=1e-4, atol=1e-7, err_msg=f"step {step}")
    expected = reference.step(
        params, list(zip(keras_grads[0::2], keras_grads[1::2])))
    for (kernel, bias), (exp_kernel, exp_bias) in zip(dense_params(model),
                                                      expected):
      assert_allclose(kernel, exp_kernel, rtol=1e-6, atol=2e-7,
                      err_msg=f"step {step}")
      assert_allclose(bias, exp_bias, rtol=1e-6, atol=2e-7,
                      err_msg=f"step {step}")
  assert int(optimizer.iterations) == steps  # TF1's global_step


def test_compiled_model_steps_match_numpy(batch):
  """build_model's compiled train step (what fit runs) is hw05's Adam."""
  hparams = hp.HParams(optimizer="adam", learning_rate=0.9, beta1=0.6,
                       beta2=0.8, epsilon=0.1, seed=4)  # keep_prob 1
  images, labels = batch
  model = train.build_model(hparams)
  params = dense_params(model)
  reference = nr.optimizer(hparams)
  for step in range(3):
    logs = model.train_on_batch(images, labels, return_dict=True)
    expected_cost, expected_grads = nr.cost_and_grads(params, images, labels)
    params = reference.step(params, expected_grads)
    assert_allclose(logs["loss"], expected_cost, rtol=1e-5, atol=1e-6,
                    err_msg=f"step {step + 1}")
  for (kernel, bias), (exp_kernel, exp_bias) in zip(dense_params(model), params):
    assert_allclose(kernel, exp_kernel, rtol=1e-4, atol=1e-5)
    assert_allclose(bias, exp_bias, rtol=1e-4, atol=1e-5)


def train_steps(optimizer, batch, steps=3):
  """`steps` steps of a seeded MLP with `optimizer`; (model, optimizer)."""
  images, labels = batch
  keras.utils.set_random_seed(5)
  model = mlp.inference((64, 32))
  model.compile(optimizer=optimizer, loss=mlp.loss())
  for _ in range(steps):
    model.train_on_batch(images, labels)
  return model, optimizer


def test_fused_adam_is_keras_adam_with_tf1s_one_minus_beta(batch):
  """The fused kernel's steps are bit for bit Keras' Adam's, given what the
  kernel computes in float32 that Keras computes in float64: 1 - beta."""
  fused, _ = train_steps(mlp.training("adam", 0.9, 0.6, 0.8, 0.1), batch)
  f32 = lambda x: float(np.float32(x))
  keras_adam, _ = train_steps(keras.optimizers.Adam(
      0.9, beta_1=f32(0.6), beta_2=f32(0.8), epsilon=0.1), batch)
  for mine, theirs in zip(fused.optimizer.variables + fused.weights,
                          keras_adam.optimizer.variables + keras_adam.weights,
                          strict=True):
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)


def test_fused_adam_runs_one_kernel_per_variable(batch):
  model, optimizer = train_steps(mlp.training("adam", 0.9, 0.6, 0.8, 0.1), batch, 1)
  variables = model.trainable_variables
  step = tf.function(lambda grads: optimizer.apply(grads, variables))
  graph = step.get_concrete_function(
      [tf.TensorSpec(v.shape, v.dtype) for v in variables]).graph
  ops = [op.type for op in graph.get_operations()]
  assert ops.count("ResourceApplyAdam") == len(variables) == 6
  assert "Sqrt" not in ops  # none of Keras' composed update


def test_a_saved_model_holds_keras_own_adam_with_the_fused_ones_state(batch, tmp_path):
  model, optimizer = train_steps(mlp.training("adam", 0.9, 0.6, 0.8, 0.1), batch)
  twin = mlp.keras_optimizer(optimizer, model.trainable_variables)
  assert type(twin) is keras.optimizers.Adam
  assert twin.get_config() == optimizer.get_config()
  path = tmp_path / "model.keras"
  checkpoints.save_model(model, str(path))
  loaded = keras.saving.load_model(path, safe_mode=True)  # compiled
  assert type(loaded.optimizer) is keras.optimizers.Adam
  assert int(loaded.optimizer.iterations) == 3
  for mine, theirs in zip(loaded.optimizer.variables, optimizer.variables,
                          strict=True):
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
  sgd = mlp.training("gd")
  assert mlp.keras_optimizer(sgd, model.trainable_variables) is sgd


# ---------------------------------------------------------------- run_training


def check_summary_format(lines, epochs):
  assert len(lines) == epochs + 1, lines
  for epoch, line in enumerate(lines[:-1], start=1):
    match = EPOCH_LINE.match(line)
    assert match, line
    assert int(match.group(1)) == epoch
  assert ACCURACY_LINE.match(lines[-1]), lines[-1]


@pytest.mark.parametrize("case", ["sgd", "adam_hw05"])
def test_epoch_cost_follows_the_numpy_trajectory(case, mnist):
  """One batch an epoch: epoch k's cost is the loss before the k-th step."""
  epochs = 3
  hparams = dataclasses.replace(OPTIMIZER_CASES[case], training_epochs=epochs,
                                batch_size=100, seed=5)
  data_sets = small_data_sets(mnist, train_size=100)
  images, labels = data_sets.train.images, data_sets.train.labels
  params = dense_params(train.build_model(hparams))  # the same seed: same start

  result, lines = run_captured(hparams, data_sets)

  reference = nr.optimizer(hparams)
  expected_costs = []
  for _ in range(epochs):
    cost, grads = nr.cost_and_grads(params, images, labels)
    expected_costs.append(cost)
    params = reference.step(params, grads)
  check_summary_format(lines, epochs)
  assert_allclose(result.epoch_costs, expected_costs, rtol=1e-5, atol=1e-6)
  assert_allclose([float(EPOCH_LINE.match(line).group(2)) for line in lines[:-1]],
                  expected_costs, rtol=1e-5, atol=1e-6)
  for (kernel, bias), (exp_kernel, exp_bias) in zip(
      result_params(result.weights), params):
    assert_allclose(kernel, exp_kernel, rtol=1e-4, atol=1e-5)
    assert_allclose(bias, exp_bias, rtol=1e-4, atol=1e-5)


def test_epoch_cost_is_the_mean_over_the_epochs_batches(mnist):
  """With a learning rate too small to move a float32 weight, the epoch's batch
  losses average to the loss over all its examples, whatever the order."""
  hparams = hp.HParams(learning_rate=1e-30, training_epochs=2, batch_size=50,
                       seed=6)
  data_sets = small_data_sets(mnist, train_size=200)  # 4 batches an epoch
  result, lines = run_captured(hparams, data_sets)
  params = result_params(result.weights)
  expected = nr.softmax_cross_entropy(
      nr.forward(params, data_sets.train.images)[-1],
      data_sets.train.labels).mean()
  check_summary_format(lines, 2)
  assert_allclose(result.epoch_costs, [expected] * 2, rtol=1e-5, atol=1e-6)
  for epoch, (line, cost) in enumerate(zip(lines, result.epoch_costs), start=1):
    assert line == f"Epoch: {epoch:04d} cost = {cost:.9f}"


@pytest.fixture(scope="module")
def pixels(data_dir):
  """MNIST as the make targets read it for modern: uint8 images (read here,
  not made from full_mnist: reading them is what is tested)."""
  return input_data.read_data_sets(data_dir, one_hot=True, dtype=port.PORT.image_dtype)


def test_uint8_images_scale_to_the_float32_data_sets_bit_for_bit(pixels, mnist):
  """modern reads uint8 images and scales them in the pipeline (to_float): the
  very float32 numbers legacy is fed, not merely close ones."""
  assert pixels.train.images.dtype == np.uint8
  for split in ("train", "test"):
    scaled = train.to_float(getattr(pixels, split).images).numpy()
    assert scaled.dtype == np.float32
    np.testing.assert_array_equal(scaled, getattr(mnist, split).images)
  floats = mnist.test.images[:10]
  assert train.to_float(floats) is floats  # float32 ones pass as they are


def test_input_pipeline_runs_without_the_autotuner(mnist):
  """make_dataset turns tf.data's autotuner off: its thread made fit's end
  wait seconds (docs/speed.md). Two batches are prepared ahead."""
  dataset = train.make_dataset(helpers.small_data_sets(mnist, 300).train,
                               batch_size=100, seed=1, epochs=2)
  assert dataset.options().autotune.enabled is False
  batches = [labels.shape[0] for _, labels in dataset]
  assert batches == [100] * 6  # 3 steps an epoch, both epochs


def test_fit_traces_the_training_step_once(mnist, monkeypatch):
  """build_model builds the optimizer's slots: created inside fit's first
  trace, they made tf.function trace the step a second time (0.3-0.7 s of
  a run, docs/speed.md)."""
  traces = []
  original = mlp.MLP.train_step

  def counted(self, data):
    traces.append(tf.executing_eagerly())
    return original(self, data)

  def no_variable_here(next_creator, **kwargs):
    raise AssertionError(f"fit created variable {kwargs.get('name')}")

  monkeypatch.setattr(mlp.MLP, "train_step", counted)
  hparams = dataclasses.replace(hp.SCRIPTS["hw05"], training_epochs=2,
                                seed=1, train_limit=300)
  data_sets = small_data_sets(mnist, 300)
  model = train.build_model(hparams, steps_per_epoch=3)
  with tf.variable_creator_scope(no_variable_here):
    model.fit(train.make_dataset(data_sets.train, 100, 1, 2), epochs=2,
              steps_per_epoch=3, verbose=0, shuffle=False)
  assert traces == [False]  # traced once, in a graph


def test_uint8_and_float32_data_sets_train_the_same_run(pixels, mnist):
  """The make targets train modern on uint8 images (cli asks for
  port.PORT.image_dtype); the parity suite and the sweeps hand it float32 ones.
  Both must be the same run: same lines, same weights to the last bit."""
  hparams = dataclasses.replace(hp.SCRIPTS["hw05"], training_epochs=2, seed=5)
  runs = [run_captured(hparams, small_data_sets(data_sets, train_size=400))
          for data_sets in (mnist, pixels)]
  (float_result, float_lines), (uint8_result, uint8_lines) = runs
  assert uint8_lines == float_lines
  assert uint8_result.weights.keys() == float_result.weights.keys()
  for name, value in float_result.weights.items():
    np.testing.assert_array_equal(uint8_result.weights[name], value, err_msg=name)


@pytest.fixture(scope="module")
def hw05_run(mnist, tmp_path_factory):
  """One small hw05 run (dropout on all four layers) that saves its model."""
  hparams = dataclasses.replace(hp.SCRIPTS["hw05"], training_epochs=1, seed=7)
  data_sets = small_data_sets(mnist, train_size=300, test_size=777)
  save_dir = tmp_path_factory.mktemp("save")
  result, lines = run_captured(hparams, data_sets,
                               save_path=str(save_dir / "model.keras"))
  return result, lines, data_sets, save_dir


def test_accuracy_line_is_dropout_free_argmax_as_float32(hw05_run):
  result, lines, data_sets, _ = hw05_run
  test = data_sets.test
  expected = nr.accuracy(nr.forward(result_params(result.weights), test.images)[-1],
                         test.labels)
  # One float32 argmax near-tie may flip; dropout at test would move it far more.
  assert_allclose(result.accuracy, expected, rtol=0, atol=1.5 / test.num_examples)
  assert lines[-1] == "Accuracy: " + str(np.float32(result.accuracy))
  value = ACCURACY_LINE.match(lines[-1]).group(1)
  assert len(value) <= len("0.") + 9  # float32's shortest repr, not float64's


def test_save_path_writes_a_keras_file_that_predicts_the_same(hw05_run):
  result, _, data_sets, save_dir = hw05_run
  assert os.listdir(save_dir) == ["model.keras"]  # no temporary file left
  loaded = keras.saving.load_model(save_dir / "model.keras", safe_mode=True)
  for (kernel, bias), (exp_kernel, exp_bias) in zip(
      dense_params(loaded), result_params(result.weights)):
    assert_allclose(kernel, exp_kernel, rtol=0, atol=0)
    assert_allclose(bias, exp_bias, rtol=0, atol=0)
  images = data_sets.test.images
  assert_allclose(loaded.predict(images, verbose=0),
                  nr.forward(result_params(result.weights), images)[-1],
                  rtol=1e-4, atol=1e-4)


def test_run_training_refuses_a_save_path_without_keras_suffix(mnist, tmp_path):
  lines = []
  with pytest.raises(errors.UserError):
    train.run_training(hp.HParams(training_epochs=1, seed=9),
                       small_data_sets(mnist, train_size=100),
                       save_path=str(tmp_path / "model.h5"), print_fn=lines.append)
  assert lines == []  # refused before training, not after
  assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- commands


def run_make(target, args, env):
  return subprocess.run(["make", "--no-print-directory", target, f"ARGS={args}"],
                        cwd=REPO_ROOT, env=dict(os.environ, **env),
                        capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def command_runs(data_dir, tmp_path_factory):
  """The subprocess runs, three at a time: each spends ~10 s importing TF.

  The make target and `python -m` run hw05 with the same seed: two separate
  processes whose summary lines must agree.
  """
  env = {"MNIST_DATA_DIR": data_dir}
  save_path = tmp_path_factory.mktemp("cli_save") / "hw05.keras"
  # Guard: with a stale requirements stamp `make` would rebuild .venv.
  stamp = subprocess.run(["make", "-q", ".venv/.requirements-installed"],
                         cwd=REPO_ROOT, capture_output=True)
  assert stamp.returncode == 0, "the .venv stamp is stale: run `make venv`"
  bad_save_dir = tmp_path_factory.mktemp("bad_save")
  small_run = " ".join(map(str, SMALL_RUN))
  run = functools.partial(run_module, env=env)
  jobs = {
      "make_hw04": functools.partial(
          run_make, "modern-hw04", "--train_limit 500 --training_epochs 1 --seed 1",
          env),
      "make_hw05": functools.partial(
          run_make, "modern-hw05", f"{small_run} --seed 1", env),
      "seed1": functools.partial(run, "modern.hw05", *SMALL_RUN, "--seed", 1,
                                 "--save_path", save_path),
      "seed2": functools.partial(run, "modern.hw05", *SMALL_RUN, "--seed", 2),
      "diverging": functools.partial(
          run, "modern.hw04", "--learning_rate", 1e38, "--train_limit", 300,
          "--training_epochs", 1, "--seed", 1),
      "bad_save": functools.partial(
          run, "modern.hw04", "--train_limit", 100, "--training_epochs", 1,
          "--save_path", bad_save_dir / "model.h5"),
  }
  with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
    futures = {name: pool.submit(job) for name, job in jobs.items()}
    runs = {name: future.result() for name, future in futures.items()}
  runs["save_path"] = save_path
  runs["bad_save_dir"] = bad_save_dir
  return runs


def test_cli_prints_the_summary_lines_and_nothing_on_stderr(command_runs):
  proc = command_runs["seed1"]
  assert proc.returncode == 0, proc.stderr
  assert proc.stderr == ""
  check_summary_format(summary_lines(proc.stdout), epochs=2)


def test_same_seed_repeats_in_another_process(command_runs):
  first, again = command_runs["seed1"], command_runs["make_hw05"]
  assert again.returncode == 0, again.stderr
  assert summary_lines(first.stdout) == summary_lines(again.stdout)
  assert len(summary_lines(first.stdout)) == 3


def test_different_seeds_give_different_runs(command_runs):
  other = command_runs["seed2"]
  assert other.returncode == 0, other.stderr
  first = summary_lines(command_runs["seed1"].stdout)
  second = summary_lines(other.stdout)
  assert len(second) == 3
  assert first[0] != second[0]  # different initial weights and masks


def test_cli_save_path_model_reproduces_the_printed_accuracy(command_runs, mnist):
  printed = ACCURACY_LINE.match(summary_lines(command_runs["seed1"].stdout)[-1])
  loaded = keras.saving.load_model(command_runs["save_path"], safe_mode=True)
  test = mnist.test
  logits = loaded.predict(test.images, batch_size=10000, verbose=0)
  accuracy = np.mean(logits.argmax(1) == test.labels.argmax(1))
  assert_allclose(float(printed.group(1)), accuracy, rtol=0, atol=1.5e-4)


def test_diverging_run_exits_3_naming_epoch_and_step(command_runs):
  proc = command_runs["diverging"]
  assert_one_error_line(proc, status=3)
  # Step 1 moves the output kernel by ~1e38: step 2's logits overflow.
  assert "epoch 1, step 2" in proc.stderr


@pytest.mark.parametrize("target, epochs", [("make_hw04", 1), ("make_hw05", 2)])
def test_make_targets_run_clean(command_runs, target, epochs):
  proc = command_runs[target]
  assert proc.returncode == 0, proc.stderr
  assert proc.stderr == ""
  check_summary_format(summary_lines(proc.stdout), epochs)


@pytest.mark.parametrize("flags", [
    ("--keep_prob", 0),
    ("--optimizer", "rmsprop"),
    ("--init", "uniform:-1"),
    ("surplus_argument",),
])
def test_bad_flags_exit_2_with_one_line(flags):
  assert_one_error_line(run_module("modern.hw05", *flags), status=2)


def test_save_path_without_keras_suffix_exits_2_and_writes_nothing(command_runs):
  proc = command_runs["bad_save"]
  assert_one_error_line(proc, status=2)
  assert "--save_path" in proc.stderr
  assert os.listdir(command_runs["bad_save_dir"]) == []


# ---------------------------------------------------------------- full data


@pytest.mark.slow
def test_hw04_full_run_reaches_95_5_percent(full_mnist):
  """The default hw04 run, as `make modern-hw04` does it (TF1: 96.49, 96.51%)."""
  data_sets = helpers.fresh_data_sets(full_mnist)
  result, lines = run_captured(hp.SCRIPTS["hw04"], data_sets)
  print("\n".join(lines))  # the run's record, shown with -s or -rP
  check_summary_format(lines, epochs=15)
  assert result.epoch_costs[-1] < result.epoch_costs[0]
  assert result.accuracy >= 0.955, lines
