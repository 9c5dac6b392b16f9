"""Modern's checkpoints: tf.train.Checkpoint, resuming, and .keras files.

  prepare()     - --checkpoint_dir made ready (common/checkpoint_dir.py).
  Checkpoints   - the model's checkpoints, one per epoch, by a
                  tf.train.CheckpointManager.
  resume()      - restores the last one: weights, optimizer, epoch, and the
                  Dropout layers' seed state (the batch order is a function
                  of the seed and the epoch: nothing to restore).
  save_model()  - --save_path: a .keras file, written atomically.
  load_model()  - a .keras file as anyone's Keras would load it.
"""

import dataclasses
import os
import zipfile
from typing import Optional

import keras
import tensorflow as tf

from common import checkpoint_dir
from common import errors
from common import files
from common import hparams as hp
from modern import mlp
from modern import port

PORT_NAME = port.PORT.name


def prepare(directory: Optional[str], hparams: hp.HParams) -> hp.HParams:
  """`hparams` with the directory's seed, once `directory` is ready (or None).

  A run without --seed gets one there: the batch order of a resumed run
  must continue the interrupted run's.
  """
  if not directory:
    return hparams
  seed = checkpoint_dir.prepare_directory(directory, PORT_NAME, hparams)
  return dataclasses.replace(hparams, seed=seed)


class Checkpoints:
  """The model's checkpoints in --checkpoint_dir (tf.train.CheckpointManager).

  Holds the model's weights, its optimizer (slots, step counter, learning
  rate), each Dropout layer's SeedGenerator state (Keras layers do not
  track it for tf.train.Checkpoint) and `training_state`: the JSON of a
  common.checkpoint_dir.TrainingState.
  """

  def __init__(self, directory: str, model: keras.Model):
    self.directory = directory
    # model's optimizer is built (train.build_model): a restore needs its slots.
    self.state = tf.Variable("", trainable=False, name="training_state")
    self.checkpoint = tf.train.Checkpoint(
        model=model, optimizer=model.optimizer,
        dropout_seeds={layer.name: layer.seed_generator.state
                       for layer in model.layers
                       if isinstance(layer, keras.layers.Dropout)},
        training_state=self.state)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, directory, max_to_keep=checkpoint_dir.KEEP)

  def restore(self) -> Optional[checkpoint_dir.TrainingState]:
    """Restores the latest checkpoint, if any; returns its TrainingState."""
    path = checkpoint_dir.latest_checkpoint(self.directory)
    if path is None:
      return None
    try:
      # Every variable here must get a value, and every value a variable.
      self.checkpoint.restore(path).assert_consumed()
      return checkpoint_dir.TrainingState.from_json(self.state.numpy())
    except Exception as e:  # pylint: disable=broad-except
      # Whatever fails here, a file is damaged (TF raises OpErrors,
      # ValueError, even IndexError for a file cut short).
      raise checkpoint_dir.restore_failed(path, e) from None

  def save(self, state: checkpoint_dir.TrainingState) -> None:
    """Saves checkpoint `state.epoch`; the pointer names it once it is complete."""
    prefix = os.path.join(self.directory, f"ckpt-{state.epoch}")
    with checkpoint_dir.uninterrupted(), \
         checkpoint_dir.undone_if_disk_full(self.directory, prefix):
      self.state.assign(state.to_json())
      # Write callbacks run once the files are in place, before the manager
      # moves its pointer (atomically) and deletes old checkpoints.
      fault = tf.train.CheckpointOptions(experimental_write_callbacks=[
          lambda: checkpoint_dir.fault_point(state.epoch)])
      self.manager.save(checkpoint_number=state.epoch, options=fault)


class CheckpointEveryEpoch(keras.callbacks.Callback):
  """Saves a checkpoint at every epoch end, after the epoch's summary line."""

  def __init__(self, checkpointer: Checkpoints, summary):
    super().__init__()
    self.checkpointer = checkpointer
    self.summary = summary  # train.EpochSummary: the costs so far

  def on_epoch_end(self, epoch, logs=None):
    self.checkpointer.save(checkpoint_dir.TrainingState(
        epoch + 1, list(self.summary.epoch_costs)))


def resume(checkpointer: Optional[Checkpoints],
           hparams: hp.HParams) -> checkpoint_dir.TrainingState:
  """The state to go on from: the last checkpoint's, restored into the model.

  A new run (no checkpoint, or no --checkpoint_dir) starts at epoch 0.
  """
  restored = checkpointer.restore() if checkpointer else None
  if not restored:
    return checkpoint_dir.TrainingState()
  checkpoint_dir.check_epochs(checkpointer.directory, restored,
                              hparams.training_epochs)
  return restored


def check_keras_path(path: str, flag: str) -> None:
  if not port.is_keras_path(path):
    raise errors.UserError(f"{flag} {path} must end in {port.KERAS_SUFFIX} "
                           "(Keras' model file format)")


def save_model(model: keras.Model, save_path: str) -> None:
  """Writes `model` to a .keras file atomically: a crash never leaves half a model.

  As a plain keras.Sequential (mlp.plain_model), so that the file loads
  with keras.saving.load_model alone, without this project's code; with
  the model's optimizer (as Keras' own class) and loss if it was compiled.
  """
  check_keras_path(save_path, "--save_path")
  plain = mlp.plain_model(model)
  if model.compiled:
    optimizer = mlp.keras_optimizer(model.optimizer, model.trainable_variables)
    plain.compile(optimizer=optimizer, loss=model.loss,
                  metrics=[mlp.evaluation()])
  try:
    with files.atomic_path(save_path, suffix=port.KERAS_SUFFIX) as tmp:
      plain.save(tmp)
      files.fault_point("save_path")
  except OSError as e:
    if files.is_disk_full(e):
      raise files.disk_full(save_path, "--save_path") from None
    raise errors.UserError(f"cannot write {save_path} ({e.strerror or e}); "
                           "choose another --save_path") from None


def load_model(model_path: str, compile: bool = False) -> keras.Model:  # pylint: disable=redefined-builtin
  """Loads a .keras file as anyone's Keras would: safe mode on, no project code.

  Uncompiled by default: evaluation needs no optimizer, and a model migrated
  without its optimizer has none; `compile` restores the optimizer and its
  state too, if the file holds them. Raises UserError unless the file holds
  a model from 784 pixels to 10 logits.
  """
  if not os.path.isfile(model_path):
    raise errors.UserError(f"no model file at {model_path}: give the .keras "
                           "file a modern run's --save_path or "
                           "modern.migrate_checkpoint wrote")
  if not zipfile.is_zipfile(model_path):  # Keras would call it "not found"
    raise errors.UserError(f"{model_path} is not a .keras file (not a zip "
                           "archive: truncated, or another format); save it again")
  try:
    model = keras.saving.load_model(model_path, compile=compile, safe_mode=True)
  except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as e:
    raise errors.UserError(f"{model_path} is not a loadable Keras model "
                           f"({errors.first_line(e)}); save it again") from None
  shapes = (getattr(model, "input_shape", None), getattr(model, "output_shape", None))
  if shapes != ((None, hp.IMAGE_PIXELS), (None, hp.NUM_CLASSES)):
    raise errors.UserError(
        f"{model_path} maps {shapes[0]} to {shapes[1]}, not MNIST's "
        f"(None, {hp.IMAGE_PIXELS}) pixels to (None, {hp.NUM_CLASSES}) logits")
  return model
