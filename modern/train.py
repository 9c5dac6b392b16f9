"""Trains and evaluates the homework MLP the TF2 way: tf.data, compile, fit.

Name for name with legacy/train.py; prints the same summary lines.
Checkpoints (--checkpoint_dir, checkpoints.py) use tf.train.Checkpoint and
tf.train.CheckpointManager, TensorBoard scalars (--logdir, summaries.py)
tf.summary.
"""

import contextlib
import dataclasses
import secrets
import sys
from typing import Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from common import console
from common import errors
from common import files
from common import hparams as hp
from common import input_data
from common import serving
from modern import checkpoints
from modern import export
from modern import mlp
from modern import summaries


@dataclasses.dataclass
class TrainingResult:
  epoch_costs: List[float]
  accuracy: float
  weights: Dict[str, np.ndarray]  # "hidden1/kernel" -> value


class EpochSummary(keras.callbacks.Callback):
  """Prints legacy's `Epoch: 0001 cost = ...` lines.

  Also remembers where each epoch started, so that a non-finite cost
  (mlp.MLP stops at it) can be reported as epoch and step.
  """

  def __init__(self, print_fn=print, epoch_costs=()):
    super().__init__()
    self.print_fn = print_fn
    self.epoch_costs = list(epoch_costs)  # a resumed run's: the restored ones first
    self.epoch = 0
    self.epoch_start_step = 0

  def on_epoch_begin(self, epoch, logs=None):
    self.epoch = epoch + 1
    self.epoch_start_step = int(self.model.optimizer.iterations)

  def on_epoch_end(self, epoch, logs=None):
    self.epoch_costs.append(logs["loss"])
    self.print_fn(console.epoch_line(epoch + 1, logs["loss"]))


def to_float(images):
  """Pixels as float32 in [0, 1]; uint8 ones scaled as read_data_sets scales.

  float32(pixel) * float32(1 / 255): the very numbers the float32 data sets
  hold, so a run on either kind trains on the same inputs, bit for bit.
  """
  if images.dtype == tf.uint8:
    return tf.cast(images, tf.float32) * np.float32(1.0 / 255.0)
  return images


# tf.data's autotuner runs a background thread that the iterator, when fit
# drops it, can wait seconds for (fit returned 0.01-7 s after its last epoch
# in 3-epoch runs here, at most 0.03 s without the autotuner; docs/speed.md).
# A batch is a gather of 100 rows: two prepared ahead keep the step fed.
PREFETCH_BATCHES = 2
_NO_AUTOTUNE = tf.data.Options()
_NO_AUTOTUNE.autotune.enabled = False


def make_dataset(data_set: input_data.DataSet, batch_size: int, seed: int,
                 epochs: int, initial_epoch: int = 0) -> tf.data.Dataset:
  """The batches of (images, one-hot labels) of epochs initial_epoch+1..epochs.

  As legacy, each epoch is num_examples // batch_size full batches. Each
  epoch's order is drawn from (seed, epoch) alone, so a run resumed at any
  epoch (fit's initial_epoch) gets the batches the interrupted run would
  have had; all epochs come as one stream (fit's steps_per_epoch cuts it).
  The shuffle moves indices, not images: a shuffle buffer would hold a
  second copy of the training set and copy every image once an epoch;
  gathering a batch by its indices, in the graph, copies only the batch.
  """
  images = tf.constant(data_set.images)
  labels = tf.constant(data_set.labels)
  num_examples = data_set.num_examples
  steps = num_examples // batch_size

  def epoch_batches(epoch):  # [steps, batch_size] indices
    order = tf.random.experimental.stateless_shuffle(
        tf.range(num_examples, dtype=tf.int64),
        seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
    return tf.reshape(order[:steps * batch_size], [steps, batch_size])

  def gather(batch):
    return to_float(tf.gather(images, batch)), tf.gather(labels, batch)

  return (tf.data.Dataset.range(initial_epoch, epochs)
          .map(epoch_batches)
          .unbatch()
          .map(gather)
          .prefetch(PREFETCH_BATCHES)
          .with_options(_NO_AUTOTUNE))


def build_model(hparams: hp.HParams,
                steps_per_epoch: Optional[int] = None) -> keras.Model:
  """The compiled model for `hparams`, its optimizer built (slots created).

  Seeds everything first if asked.
  """
  if hparams.seed is not None:
    keras.utils.set_random_seed(hparams.seed)
  model = mlp.inference(hparams.hidden_units, hparams.activation, hparams.init,
                        hparams.bias_init, 1 - hparams.keep_prob,
                        hparams.dropout_layers)
  model.compile(optimizer=mlp.training(hparams.optimizer, hparams.learning_rate,
                                       hparams.beta1, hparams.beta2,
                                       hparams.epsilon),
                # No metric: the training lines need only the cost, and the
                # accuracy is measured once, on the test set (test_accuracy).
                loss=mlp.loss(),
                # A whole epoch per call into TensorFlow: one call per step
                # spends more time in Python and dispatch than in the maths
                # (1.6-1.9x slower here). fit reads all epochs from one stream
                # (make_dataset), so a call must end at an epoch's end.
                steps_per_execution=steps_per_epoch or 1)
  # The optimizer's slots now, not inside fit's first trace: a tf.function
  # whose first trace creates variables is traced a second time.
  model.optimizer.build(model.trainable_variables)
  return model


def model_weights(model: keras.Model) -> Dict[str, np.ndarray]:
  """The trained weights and biases by layer and attribute ("hidden1/kernel")."""
  # v.path carries the model's name too ("mlp/hidden1/kernel").
  return {v.path.removeprefix(f"{model.name}/"): v.numpy()
          for v in model.trainable_variables}


def test_accuracy(model: keras.Model, test: input_data.DataSet) -> float:
  """Accuracy on the whole test set in one eager call, Dropout off.

  Eager, where model.evaluate would first trace a test function for its
  one batch (0.2-0.8 s of a run, docs/speed.md).
  """
  metric = mlp.evaluation()
  metric.update_state(test.labels, model(to_float(test.images), training=False))
  return float(metric.result())


@contextlib.contextmanager
def non_finite_cost_as_error(model: keras.Model, summary: EpochSummary):
  """mlp.MLP's in-step check, raised as legacy raises it: epoch and step."""
  try:
    yield
  except tf.errors.InvalidArgumentError as e:
    if mlp.NON_FINITE_COST not in e.message:
      raise
    # The failing step was applied, so the optimizer has counted it.
    step = int(model.optimizer.iterations) - summary.epoch_start_step
    raise errors.NonFiniteCostError(summary.epoch, step) from None


def run_training(hparams: hp.HParams, data_sets: input_data.Datasets,
                 save_path: Optional[str] = None,
                 checkpoint_dir: Optional[str] = None,
                 logdir: Optional[str] = None,
                 export_target: Optional[serving.ExportTarget] = None,
                 print_fn=print) -> TrainingResult:
  """Trains for `hparams.training_epochs` epochs, printing legacy's lines.

  With `checkpoint_dir`, first resumes from the checkpoint there if any, and
  saves one at every epoch end (checkpoints.py); with `logdir`, writes the
  TensorBoard scalars (summaries.py); with `export_target`, exports the
  trained model for serving (export.py).
  """
  # Check the outputs (before, not after, training), and take the seed a
  # checkpoint_dir keeps.
  if save_path:
    checkpoints.check_keras_path(save_path, "--save_path")
  if logdir:
    files.writable_directory(logdir, "--logdir")
  hparams = checkpoints.prepare(checkpoint_dir, hparams)

  # Build and compile the model: inference, loss, training and evaluation.
  train = data_sets.train
  steps = train.num_examples // hparams.batch_size
  model = build_model(hparams, steps)
  checkpointer = (checkpoints.Checkpoints(checkpoint_dir, model)
                  if checkpoint_dir else None)

  # Restore the last checkpoint if any; then the callbacks: Keras' own epoch
  # line, the summary line under it, the checkpoint and the TensorBoard
  # scalar, in legacy's order.
  state = checkpoints.resume(checkpointer, hparams)
  summary = EpochSummary(print_fn, state.epoch_costs)
  scalars = summaries.Summaries(logdir, state, hparams.training_epochs,
                                resumed=state.epoch > 0)
  callbacks = [keras.callbacks.ProgbarLogger(), summary]
  if checkpointer:
    callbacks.append(checkpoints.CheckpointEveryEpoch(checkpointer, summary))
  callbacks.append(scalars)

  # The training loop: fit over the epochs still to go, the batch order
  # drawn from the seed and the epoch (make_dataset).
  if state.epoch < hparams.training_epochs:
    data_seed = hparams.seed if hparams.seed is not None else secrets.randbelow(2**31)
    with non_finite_cost_as_error(model, summary):
      model.fit(make_dataset(train, hparams.batch_size, data_seed,
                             hparams.training_epochs, state.epoch),
                epochs=hparams.training_epochs, initial_epoch=state.epoch,
                steps_per_epoch=steps, callbacks=callbacks,
                # The progress bar on a terminal, one line per epoch otherwise.
                verbose=1 if sys.stdout.isatty() else 2,
                shuffle=False)  # the dataset orders itself

  # Evaluate on the whole test set (Dropout is off outside training).
  accuracy = test_accuracy(model, data_sets.test)
  print_fn(console.accuracy_line(accuracy))
  scalars.write_final_accuracy(accuracy)
  scalars.close()
  if save_path:
    checkpoints.save_model(model, save_path)
  if export_target:
    export.export(model, export_target)
  return TrainingResult(summary.epoch_costs, float(accuracy), model_weights(model))
