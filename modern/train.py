"""Trains and evaluates the homework MLP the TF2 way: tf.data, compile, fit.

Name for name with legacy/train.py; prints the same summary lines.
"""

import dataclasses
import os
import sys
from typing import Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from common import console
from common import errors
from common import hparams as hp
from common import input_data
from modern import mlp


@dataclasses.dataclass
class TrainingResult:
  epoch_costs: List[float]
  accuracy: float
  weights: Dict[str, np.ndarray]  # "hidden1/kernel" -> value


# Training steps per call into TensorFlow: one call per step spends more
# time in Python and dispatch than in the maths (1.6-1.9x slower here); 50
# still updates the progress bar 11 times an epoch.
STEPS_PER_EXECUTION = 50


class EpochSummary(keras.callbacks.Callback):
  """Prints legacy's `Epoch: 0001 cost = ...` lines.

  Also remembers where each epoch started, so that a non-finite cost
  (mlp.MLP stops at it) can be reported as epoch and step.
  """

  def __init__(self, print_fn=print):
    super().__init__()
    self.print_fn = print_fn
    self.epoch_costs = []
    self.epoch = 0
    self.epoch_start_step = 0

  def on_epoch_begin(self, epoch, logs=None):
    self.epoch = epoch + 1
    self.epoch_start_step = int(self.model.optimizer.iterations)

  def on_epoch_end(self, epoch, logs=None):
    self.epoch_costs.append(logs["loss"])
    self.print_fn(console.epoch_line(epoch + 1, logs["loss"]))


def make_dataset(data_set: input_data.DataSet, batch_size: int,
                 seed: Optional[int] = None) -> tf.data.Dataset:
  """Batches of (images, one-hot labels), reshuffled every epoch.

  As legacy, each epoch is num_examples // batch_size full batches. The
  shuffle moves indices, not images: a shuffle buffer of 55,000 images would
  hold a second copy of the training set (172 MB) and copy every image once
  an epoch; gathering a batch by its indices copies only the batch.
  """
  images, labels = data_set.images, data_set.labels

  def gather(batch):  # from the numpy arrays in place: no copy held by TF
    x, y = tf.numpy_function(lambda i: (images[i], labels[i]), [batch],
                             (tf.float32, tf.float32), stateful=False)
    return (tf.ensure_shape(x, (batch_size, hp.IMAGE_PIXELS)),
            tf.ensure_shape(y, (batch_size, hp.NUM_CLASSES)))

  return (tf.data.Dataset.range(data_set.num_examples)
          .shuffle(data_set.num_examples, seed=seed, reshuffle_each_iteration=True)
          .batch(batch_size, drop_remainder=True)
          .map(gather)
          .prefetch(tf.data.AUTOTUNE))


def build_model(hparams: hp.HParams) -> keras.Model:
  """The compiled model for `hparams`; seeds everything first if asked."""
  if hparams.seed is not None:
    keras.utils.set_random_seed(hparams.seed)
  keep_prob = hparams.keep_prob
  model = mlp.inference(hparams.hidden_units, hparams.activation, hparams.init,
                        hparams.bias_init, keep_prob, hparams.dropout_layers)
  model.compile(optimizer=mlp.training(hparams.optimizer, hparams.learning_rate,
                                       hparams.beta1, hparams.beta2,
                                       hparams.epsilon),
                loss=mlp.loss(), metrics=[mlp.evaluation()],
                steps_per_execution=STEPS_PER_EXECUTION)
  return model


def model_weights(model: keras.Model) -> Dict[str, np.ndarray]:
  """The trained weights and biases by layer and attribute ("hidden1/kernel")."""
  # v.path carries the model's name too ("mlp/hidden1/kernel").
  return {v.path.removeprefix(f"{model.name}/"): v.numpy()
          for v in model.trainable_variables}


def save_model(model: keras.Model, save_path: str) -> None:
  """Writes a .keras file atomically: a crash never leaves half a model."""
  directory, name = os.path.split(save_path)
  tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp.keras")
  # A plain keras.Sequential over the trained layers, so that the file loads
  # with keras.saving.load_model alone, without this project's mlp.MLP (whose
  # only addition is a training-time check).
  plain = keras.Sequential([keras.Input(shape=(hp.IMAGE_PIXELS,), name="X"),
                            *model.layers], name=model.name)
  plain.compile(optimizer=model.optimizer, loss=model.loss,
                metrics=[mlp.evaluation()])
  try:
    plain.save(tmp)
    os.replace(tmp, save_path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


def run_training(hparams: hp.HParams, data_sets: input_data.Datasets,
                 save_path: Optional[str] = None, print_fn=print) -> TrainingResult:
  """Trains for `hparams.training_epochs` epochs, printing legacy's lines."""
  if save_path and not save_path.endswith(".keras"):  # before, not after, training
    raise errors.UserError(f"--save_path {save_path} must end in .keras "
                           "(Keras' model file format)")
  model = build_model(hparams)
  summary = EpochSummary(print_fn)
  try:
    model.fit(make_dataset(data_sets.train, hparams.batch_size, hparams.seed),
              epochs=hparams.training_epochs,
              # Keras' own epoch line first, then the summary line under it.
              callbacks=[keras.callbacks.ProgbarLogger(), summary],
              # The progress bar on a terminal, one line per epoch otherwise.
              verbose=1 if sys.stdout.isatty() else 2,
              shuffle=False)  # the dataset reshuffles itself every epoch
  except tf.errors.InvalidArgumentError as e:
    if mlp.NON_FINITE_COST not in e.message:
      raise
    # The failing step was applied, so the optimizer has counted it.
    step = int(model.optimizer.iterations) - summary.epoch_start_step
    raise errors.NonFiniteCostError(summary.epoch, step) from None

  test = data_sets.test
  _, accuracy = model.evaluate(test.images, test.labels,
                               batch_size=test.num_examples, verbose=0)
  print_fn(console.accuracy_line(accuracy))
  if save_path:
    save_model(model, save_path)
  return TrainingResult(summary.epoch_costs, float(accuracy), model_weights(model))

