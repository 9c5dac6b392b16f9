"""Trains and evaluates the homework MLP the TF2 way: tf.data, compile, fit.

Name for name with legacy/train.py; prints the same summary lines.
"""

import dataclasses
import math
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


class EpochSummary(keras.callbacks.Callback):
  """Prints legacy's `Epoch: 0001 cost = ...` lines; stops on a non-finite cost."""

  def __init__(self, print_fn=print):
    super().__init__()
    self.print_fn = print_fn
    self.epoch_costs = []
    self._epoch = 0

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch + 1

  def on_train_batch_end(self, batch, logs=None):
    # logs["loss"] is the epoch's running mean: non-finite from the first
    # non-finite step on.
    if not math.isfinite(logs["loss"]):
      raise errors.NonFiniteCostError(self._epoch, batch + 1)

  def on_epoch_end(self, epoch, logs=None):
    self.epoch_costs.append(logs["loss"])
    self.print_fn(console.epoch_line(epoch + 1, logs["loss"]))


def make_dataset(data_set: input_data.DataSet, batch_size: int,
                 seed: Optional[int] = None) -> tf.data.Dataset:
  """Batches of (images, one-hot labels), reshuffled every epoch.

  As legacy, each epoch is num_examples // batch_size full batches.
  """
  return (tf.data.Dataset.from_tensor_slices((data_set.images, data_set.labels))
          .shuffle(data_set.num_examples, seed=seed, reshuffle_each_iteration=True)
          .batch(batch_size, drop_remainder=True)
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
                loss=mlp.loss(), metrics=[mlp.evaluation()])
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
  try:
    model.save(tmp)
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
  model.fit(make_dataset(data_sets.train, hparams.batch_size, hparams.seed),
            epochs=hparams.training_epochs,
            # Keras' own epoch line first, then the summary line under it.
            callbacks=[keras.callbacks.ProgbarLogger(), summary],
            # The progress bar on a terminal, one line per epoch otherwise.
            verbose=1 if sys.stdout.isatty() else 2,
            shuffle=False)  # the dataset reshuffles itself every epoch

  test = data_sets.test
  _, accuracy = model.evaluate(test.images, test.labels,
                               batch_size=test.num_examples, verbose=0)
  print_fn(console.accuracy_line(accuracy))
  if save_path:
    save_model(model, save_path)
  return TrainingResult(summary.epoch_costs, float(accuracy), model_weights(model))

