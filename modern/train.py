"""Trains and evaluates the homework MLP the TF2 way: tf.data, compile, fit.

Name for name with legacy/train.py; prints the same summary lines.
Checkpoints (--checkpoint_dir) use tf.train.Checkpoint and
tf.train.CheckpointManager, TensorBoard scalars (--logdir) tf.summary.
"""

import dataclasses
import os
import secrets
import sys
from typing import Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from common import checkpoints
from common import console
from common import errors
from common import hparams as hp
from common import input_data
from common import summaries
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


def steps_per_execution(steps_per_epoch: Optional[int] = None) -> int:
  """STEPS_PER_EXECUTION, or the largest count below it that divides the epoch.

  fit() reads all epochs' batches from one stream (make_dataset), and a call
  into TensorFlow does not stop at an epoch's end: the count must divide
  the epoch's steps (550 = 11 x 50 for the full data set).
  """
  if not steps_per_epoch:
    return STEPS_PER_EXECUTION
  return max(n for n in range(1, STEPS_PER_EXECUTION + 1)
             if steps_per_epoch % n == 0)


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


class Checkpoints:
  """The model's checkpoints in --checkpoint_dir (tf.train.CheckpointManager).

  Holds the model's weights, its optimizer (slots, step counter, learning
  rate), each Dropout layer's SeedGenerator state (Keras layers do not
  track it for tf.train.Checkpoint) and `training_state`: the JSON of a
  common.checkpoints.TrainingState.
  """

  def __init__(self, checkpoint_dir: str, model: keras.Model):
    self.directory = checkpoint_dir
    # The slots exist once the optimizer is built: a restore needs them now.
    model.optimizer.build(model.trainable_variables)
    self.state = tf.Variable("", trainable=False, name="training_state")
    self.checkpoint = tf.train.Checkpoint(
        model=model, optimizer=model.optimizer,
        dropout_seeds={layer.name: layer.seed_generator.state
                       for layer in model.layers
                       if isinstance(layer, keras.layers.Dropout)},
        training_state=self.state)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, checkpoint_dir, max_to_keep=checkpoints.KEEP)

  def restore(self) -> Optional[checkpoints.TrainingState]:
    """Restores the latest checkpoint, if any; returns its TrainingState."""
    path = checkpoints.latest_checkpoint(self.directory)
    if path is None:
      return None
    try:
      # Every variable here must get a value, and every value a variable.
      self.checkpoint.restore(path).assert_consumed()
      return checkpoints.TrainingState.from_json(self.state.numpy())
    except Exception as e:  # pylint: disable=broad-except
      # Whatever fails here, a file is damaged (TF raises OpErrors,
      # ValueError, even IndexError for a file cut short).
      raise checkpoints.restore_failed(path, e) from None

  def save(self, state: checkpoints.TrainingState) -> None:
    """Saves checkpoint `state.epoch`; the pointer names it once it is complete."""
    with checkpoints.uninterrupted():
      self.state.assign(state.to_json())
      # Write callbacks run once the files are in place, before the manager
      # moves its pointer (atomically) and deletes old checkpoints.
      fault = tf.train.CheckpointOptions(experimental_write_callbacks=[
          lambda: checkpoints.fault_point(state.epoch)])
      self.manager.save(checkpoint_number=state.epoch, options=fault)


class CheckpointEveryEpoch(keras.callbacks.Callback):
  """Saves a checkpoint at every epoch end, after EpochSummary's line."""

  def __init__(self, checkpointer: Checkpoints, summary: EpochSummary):
    super().__init__()
    self.checkpointer = checkpointer
    self.summary = summary

  def on_epoch_end(self, epoch, logs=None):
    self.checkpointer.save(
        checkpoints.TrainingState(epoch + 1, list(self.summary.epoch_costs)))


class ScalarSummaries(keras.callbacks.Callback):
  """Writes legacy's TensorBoard scalars with tf.summary (common/summaries.py).

  The stock keras.callbacks.TensorBoard names them otherwise
  ("epoch_loss"); these tags overlay a legacy run's.
  """

  def __init__(self, logdir: str, training_epochs: int):
    super().__init__()
    self.writer = tf.summary.create_file_writer(logdir)
    self.training_epochs = training_epochs
    self.write_accuracy = True

  def write(self, tag: str, value: float, step: int) -> None:
    with self.writer.as_default():
      tf.summary.scalar(tag, value, step=step)
    self.writer.flush()

  def on_epoch_end(self, epoch, logs=None):
    self.write(summaries.COST_TAG, logs["loss"], epoch + 1)

  def on_test_end(self, logs=None):  # model.evaluate on the test set
    if self.write_accuracy:
      self.write(summaries.ACCURACY_TAG, logs["accuracy"], self.training_epochs)


# The images modern asks read_data_sets for (common/cli.py): uint8 take a
# quarter of float32's memory (43 MB for the training set, not 172 MB) and
# are scaled batch by batch in the input pipeline, as keras.io's examples do.
IMAGE_DTYPE = np.uint8


def to_float(images):
  """Pixels as float32 in [0, 1]; uint8 ones scaled as read_data_sets scales.

  float32(pixel) * float32(1 / 255): the very numbers the float32 data sets
  hold, so a run on either kind trains on the same inputs, bit for bit.
  """
  if images.dtype == tf.uint8:
    return tf.cast(images, tf.float32) * np.float32(1.0 / 255.0)
  return images


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
          .prefetch(tf.data.AUTOTUNE))


def build_model(hparams: hp.HParams,
                steps_per_epoch: Optional[int] = None) -> keras.Model:
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
                steps_per_execution=steps_per_execution(steps_per_epoch))
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
                 save_path: Optional[str] = None,
                 checkpoint_dir: Optional[str] = None,
                 logdir: Optional[str] = None, print_fn=print) -> TrainingResult:
  """Trains for `hparams.training_epochs` epochs, printing legacy's lines.

  With `checkpoint_dir`, first resumes from the checkpoint there if any, and
  saves one at every epoch end (common/checkpoints.py); with `logdir`,
  writes the TensorBoard scalars of common/summaries.py.
  """
  if save_path and not save_path.endswith(".keras"):  # before, not after, training
    raise errors.UserError(f"--save_path {save_path} must end in .keras "
                           "(Keras' model file format)")
  if logdir:
    checkpoints.writable_directory(logdir, "--logdir")
  if checkpoint_dir:
    # A run without --seed gets one there: the batch order of a resumed run
    # must continue the interrupted run's.
    seed = checkpoints.prepare_directory(checkpoint_dir, "modern", hparams)
    hparams = dataclasses.replace(hparams, seed=seed)
  train = data_sets.train
  steps = train.num_examples // hparams.batch_size
  model = build_model(hparams, steps)
  checkpointer = Checkpoints(checkpoint_dir, model) if checkpoint_dir else None
  state = checkpoints.TrainingState()
  restored = checkpointer.restore() if checkpointer else None
  if restored:
    checkpoints.check_epochs(checkpoint_dir, restored, hparams.training_epochs)
    state = restored

  summary = EpochSummary(print_fn, state.epoch_costs)
  # Keras' own epoch line first, then the summary line under it, then the
  # checkpoint and the TensorBoard scalar, as legacy.
  callbacks = [keras.callbacks.ProgbarLogger(), summary]
  if checkpointer:
    callbacks.append(CheckpointEveryEpoch(checkpointer, summary))
  scalars = None
  if logdir:
    accuracy_logged, missing = False, []
    if restored:  # append to the interrupted run's events, never repeat them
      accuracy_logged = hparams.training_epochs in summaries.logged_steps(
          logdir, summaries.ACCURACY_TAG)
      missing = summaries.missing_costs(logdir, state.epoch_costs)
    scalars = ScalarSummaries(logdir, hparams.training_epochs)
    scalars.write_accuracy = not accuracy_logged
    for epoch, cost in missing:
      scalars.write(summaries.COST_TAG, cost, epoch)
    callbacks.append(scalars)
  # The batch order: drawn from the seed and the epoch (make_dataset).
  data_seed = hparams.seed if hparams.seed is not None else secrets.randbelow(2**31)
  if state.epoch < hparams.training_epochs:
    try:
      model.fit(make_dataset(train, hparams.batch_size, data_seed,
                             hparams.training_epochs, state.epoch),
                epochs=hparams.training_epochs, initial_epoch=state.epoch,
                steps_per_epoch=steps, callbacks=callbacks,
                # The progress bar on a terminal, one line per epoch otherwise.
                verbose=1 if sys.stdout.isatty() else 2,
                shuffle=False)  # the dataset orders itself
    except tf.errors.InvalidArgumentError as e:
      if mlp.NON_FINITE_COST not in e.message:
        raise
      # The failing step was applied, so the optimizer has counted it.
      step = int(model.optimizer.iterations) - summary.epoch_start_step
      raise errors.NonFiniteCostError(summary.epoch, step) from None

  test = data_sets.test
  _, accuracy = model.evaluate(to_float(test.images), test.labels,
                               batch_size=test.num_examples, verbose=0,
                               callbacks=[scalars] if scalars else None)
  print_fn(console.accuracy_line(accuracy))
  if scalars:
    scalars.writer.close()
  if save_path:
    save_model(model, save_path)
  return TrainingResult(summary.epoch_costs, float(accuracy), model_weights(model))
