"""Legacy's checkpoints: TF1 Savers, resuming, and reading a TF1 checkpoint.

  prepare()             - --checkpoint_dir made ready (common/checkpoint_dir.py).
  Checkpoints           - the graph's checkpoints, one per epoch, by a Saver.
  resume()              - restores the last one: weights, optimizer, epoch,
                          batch order, and the dropout ops' random streams.
  save_model()          - --save_path: one Saver checkpoint with that prefix.
  read_mlp_checkpoint() - finds a TF1 checkpoint of the MLP and reads its
                          weights by name (legacy.evaluate, the migration).
"""

import dataclasses
import json
import os
import re
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from common import checkpoint_dir
from common import errors
from common import files
from common import hparams as hp
from common import input_data
from legacy import port

v1 = tf.compat.v1

PORT_NAME = port.PORT.name


def prepare(directory: Optional[str], hparams: hp.HParams) -> hp.HParams:
  """`hparams` with the directory's seed, once `directory` is ready (or None).

  A run without --seed gets one there: the dropout ops must draw the same
  masks again when the run resumes.
  """
  if not directory:
    return hparams
  seed = checkpoint_dir.prepare_directory(directory, PORT_NAME, hparams)
  return dataclasses.replace(hparams, seed=seed)


def next_state(state: checkpoint_dir.TrainingState, cost: float,
               train: Optional[input_data.DataSet] = None
               ) -> checkpoint_dir.TrainingState:
  """The state after one more epoch of mean cost `cost`.

  With `train`, it holds the training set's batch order (DataSet.state()
  as JSON values), for a checkpoint to resume from.
  """
  return checkpoint_dir.TrainingState(
      state.epoch + 1, state.epoch_costs + [cost],
      batch_order(train) if train is not None else None)


def batch_order(train: input_data.DataSet) -> dict:
  """The training set's batch order (DataSet.state()) as JSON values."""
  data = train.state()
  return dict(data, order=data["order"].tolist())


class Checkpoints:
  """The graph's checkpoints in --checkpoint_dir, saved with a TF1 Saver.

  Every global variable is saved under its TF1 name ("hidden1/weights",
  "hidden1/weights/Adam", "beta1_power", "global_step", ...), plus
  `training_state`: the JSON of a common.checkpoint_dir.TrainingState.
  """

  def __init__(self, directory: str, graph: tf.Graph):
    self.directory = directory
    self.prefix = os.path.join(directory, "model.ckpt")  # as in TF1's tutorial
    # Built after the model, so that its random ops keep their seeds.
    with graph.as_default():
      self.state = tf.Variable("", trainable=False, name="training_state")
      self.state_input = v1.placeholder(tf.string, [], name="training_state_input")
      self.assign_state = self.state.assign(self.state_input)
      # save() moves the pointer and deletes old checkpoints itself
      # (write_state=False), so that nothing happens before the files are whole.
      self.saver = v1.train.Saver()

  def restore(self, sess) -> Optional[checkpoint_dir.TrainingState]:
    """Restores the latest checkpoint, if any; returns its TrainingState."""
    path = checkpoint_dir.latest_checkpoint(self.directory)
    if path is None:
      return None
    try:
      self.saver.restore(sess, path)
      return checkpoint_dir.TrainingState.from_json(sess.run(self.state))
    except Exception as e:  # pylint: disable=broad-except
      # Whatever fails here, a file is damaged (TF raises OpErrors,
      # ValueError, even IndexError for a file cut short).
      raise checkpoint_dir.restore_failed(path, e) from None

  def save(self, sess, state: checkpoint_dir.TrainingState) -> None:
    """Saves checkpoint `state.epoch`; the pointer names it once it is complete."""
    prefix = f"{self.prefix}-{state.epoch}"
    with checkpoint_dir.uninterrupted(), \
         checkpoint_dir.undone_if_disk_full(self.directory, prefix):
      sess.run(self.assign_state, {self.state_input: state.to_json()})
      path = self.saver.save(sess, self.prefix, global_step=state.epoch,
                             write_meta_graph=False, write_state=False)
      checkpoint_dir.fault_point(state.epoch)
      # The pointer (written atomically) now names it, with the last few;
      # only then are older checkpoints deleted. Relative names: the
      # directory may be moved.
      name = os.path.basename(path)
      previous = [os.path.basename(p)
                  for p in checkpoint_dir.kept_checkpoints(self.directory)]
      kept = [p for p in previous if p != name][1 - checkpoint_dir.KEEP:] + [name]
      v1.train.update_checkpoint_state(self.directory, name, kept)
      for old in set(previous) - set(kept):
        v1.train.remove_checkpoint(os.path.join(self.directory, old))


def resume(sess, checkpointer: Optional[Checkpoints], model,
           train: input_data.DataSet, hparams: hp.HParams,
           dropout_rows: Optional[int] = None) -> checkpoint_dir.TrainingState:
  """The state to go on from: the last checkpoint's, restored into `sess`.

  Besides the variables, the batch order continues where it stopped and
  the dropout ops' random streams are moved past the completed steps (each
  op drew `dropout_rows` rows a step: the batch size, or a tower's share). A
  new run (no checkpoint, or no --checkpoint_dir) starts at epoch 0.
  """
  restored = checkpointer.restore(sess) if checkpointer else None
  if not restored:
    return checkpoint_dir.TrainingState()
  checkpoint_dir.check_epochs(checkpointer.directory, restored,
                              hparams.training_epochs)
  train.restore(restored.data)
  if model.keep_prob is not None:
    steps = restored.epoch * (train.num_examples // hparams.batch_size)
    replay_dropout(sess, model.graph, steps, dropout_rows or hparams.batch_size)
  return restored


# Random numbers one replaying run of the dropout ops may draw per op.
_REPLAY_CHUNK = 1 << 20


def replay_dropout(sess, graph: tf.Graph, steps: int, batch_size: int) -> None:
  """Moves the dropout ops' random streams past `steps` training steps.

  TF1's stateful random ops keep their position in the session's kernels,
  not in a variable: a restored session would draw the first epoch's masks
  again. So the dropout ops alone draw again what the interrupted run drew,
  their noise shapes fed (no matmul runs). A kernel's Philox stream skips
  256 counters per number drawn, whatever the shape, so k steps of
  [batch, units] are drawn as one [k * batch, units]: the 8,250 steps of
  hw05's 15 epochs take a second or two, not ten. tests/test_checkpoint.py
  checks that the masks drawn next are the same either way.
  """
  noise_ops = [op for op in graph.get_operations()
               if op.type == "RandomUniform" and "dropout" in op.name.split("/")]
  if not noise_ops or not steps:
    return
  widest = max(op.outputs[0].shape[1] for op in noise_ops)
  steps_per_run = max(1, _REPLAY_CHUNK // (batch_size * widest))
  for done in range(0, steps, steps_per_run):
    rows = min(steps_per_run, steps - done) * batch_size
    sess.run(noise_ops, feed_dict={op.inputs[0]: [rows, op.outputs[0].shape[1]]
                                   for op in noise_ops})


def save_model(sess, graph: tf.Graph, save_path: str) -> None:
  """--save_path: the trained variables as one TF1 checkpoint, prefix `save_path`.

  Only PREFIX.index, PREFIX.data-* and PREFIX.meta: no `checkpoint` state
  file (write_state=False), which would name this file for the whole
  directory, a --checkpoint_dir's included. A full disk is one line, and
  what was written goes.
  """
  try:
    with graph.as_default():
      v1.train.Saver().save(sess, save_path, write_state=False)
    files.fault_point("save_path")
  except (tf.errors.OpError, OSError) as e:
    if not files.is_disk_full(e):
      raise
    checkpoint_dir.remove_partial_checkpoint(save_path)
    raise files.disk_full(save_path, "--save_path") from None


# ---------------------------------------------------- reading a TF1 checkpoint


def variable_names(layer: str) -> Tuple[str, str]:
  """A layer's weights and biases as mlp.py names them."""
  return f"{layer}/weights", f"{layer}/biases"


def _is_checkpoint(prefix: str) -> bool:
  return os.path.isfile(prefix + ".index")


def find_checkpoint(path: str) -> str:
  """The prefix of the checkpoint `path` names.

  `path` is a prefix (what legacy's --save_path wrote: PATH.index and
  PATH.data-*) or a directory whose state file names its latest checkpoint.
  """
  hint = ("give the prefix a legacy run's --save_path wrote, or a directory "
          f"with a `{checkpoint_dir.STATE_FILE}` state file")
  if os.path.isdir(path):
    state_file = os.path.join(path, checkpoint_dir.STATE_FILE)
    if not os.path.isfile(state_file):
      raise errors.UserError(f"{path} is a directory without a `{checkpoint_dir.STATE_FILE}` "
                             f"state file: {hint}")
    # What tf.train.latest_checkpoint reads, without the error it logs (a
    # second line on stderr) when the checkpoint named is gone.
    try:
      state = tf.train.get_checkpoint_state(path)
    except (ValueError, tf.errors.OpError):  # UnicodeDecodeError is a ValueError
      state = None
    if state is None or not state.model_checkpoint_path:
      raise errors.UserError(f"{state_file} is not a checkpoint state file "
                             "(it names no checkpoint): " + hint)
    prefix = state.model_checkpoint_path
    if not _is_checkpoint(prefix):
      raise errors.UserError(f"{state_file} names the checkpoint {prefix}, "
                             f"but {prefix}.index does not exist: {hint}")
    return prefix
  if _is_checkpoint(path):
    return path
  # One of the checkpoint's files named rather than its prefix?
  stem = re.sub(r"\.(index|meta|data-\d+-of-\d+)$", "", path)
  if stem != path and _is_checkpoint(stem):
    raise errors.UserError(f"{path} is one of a checkpoint's files: give its "
                           f"prefix, {stem}")
  if path.endswith(".keras"):
    raise errors.UserError(f"{path} is a Keras model file, not a TF1 "
                           "checkpoint: " + hint)
  raise errors.UserError(f"no checkpoint at {path} ({path}.index does not "
                         f"exist): {hint}")


@dataclasses.dataclass(frozen=True)
class MlpCheckpoint:
  """The homework MLP's variables in a legacy checkpoint."""
  prefix: str
  hidden_units: Tuple[int, ...]
  activation: str  # of the hidden layers: recorded beside it, or as told
  values: Dict[str, np.ndarray]  # "hidden1/weights" -> value, the MLP's only


def recorded_activation(prefix: str) -> Optional[str]:
  """The activation the run's record beside the checkpoint names, if any.

  A --checkpoint_dir run keeps hparams.json beside its checkpoints
  (common/checkpoint_dir.py); a --save_path prefix has none. Raises
  UserError if the record is damaged or holds another port's run.
  """
  path = os.path.join(os.path.dirname(prefix), checkpoint_dir.RECORD_NAME)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      record = json.load(f)
    recorded_port, activation = record["port"], record["hparams"]["activation"]
  except (OSError, ValueError, TypeError, KeyError) as e:
    raise errors.UserError(f"{path}, the record of the run, is damaged "
                           f"({type(e).__name__}); restore it or delete it and "
                           "give --activation") from None
  if recorded_port != PORT_NAME:
    raise errors.UserError(f"{path} records a run of the {recorded_port} port: its "
                           "checkpoints are not legacy TF1 checkpoints")
  if activation not in hp.ACTIVATIONS:
    raise errors.UserError(f"{path}, the record of the run, names the "
                           f"activation {activation!r}, not one of "
                           f"{', '.join(hp.ACTIVATIONS)}")
  return activation


def _mlp_layout(shapes, dtypes) -> Tuple[int, ...]:
  """The hidden units the variables describe; raises ValueError naming a misfit.

  hidden1 .. hiddenN then softmax_linear, each with weights [fan_in,
  fan_out] and biases [fan_out] in float32, from 784 pixels to 10 logits.
  Anything else (optimizer slots, the step counter) is not the MLP's.
  """
  num_hidden = 0
  while variable_names(f"hidden{num_hidden + 1}")[0] in shapes:
    num_hidden += 1
  if not num_hidden:
    raise ValueError("it has no variable hidden1/weights")
  names = hp.layer_names(num_hidden)
  fan_in = hp.IMAGE_PIXELS
  hidden_units = []
  for layer in names:
    weights, biases = variable_names(layer)
    for name in (weights, biases):
      if name not in shapes:
        raise ValueError(f"it has no variable {name}")
      if dtypes[name] != "float32":
        raise ValueError(f"{name} is {dtypes[name]}, not float32")
    fan_out = hp.NUM_CLASSES if layer == names[-1] else None
    shape = list(shapes[weights])
    if len(shape) != 2 or shape[0] != fan_in or fan_out not in (None, shape[1]):
      expected = f"[{fan_in}, {fan_out or 'units'}]"
      raise ValueError(f"{weights} has shape {shape}, not {expected}")
    fan_out = shape[1]
    if list(shapes[biases]) != [fan_out]:
      raise ValueError(f"{biases} has shape {list(shapes[biases])}, "
                       f"not [{fan_out}]")
    hidden_units.append(fan_out)
    fan_in = fan_out
  return tuple(hidden_units[:-1])


def read_mlp_checkpoint(path: str, activation: Optional[str] = None) -> MlpCheckpoint:
  """Finds the checkpoint `path` names, checks it holds the MLP, reads its variables.

  The activation is `activation` or the one the run's record beside the
  checkpoint names (the two must agree), else sigmoid (the scripts'). Raises
  UserError (one line) for a missing,
  unreadable, damaged or foreign checkpoint. Each variable is read once here,
  so that a damaged data file shows now rather than halfway through a restore.
  """
  prefix = find_checkpoint(path)
  recorded = recorded_activation(prefix)
  if activation is None:
    activation = recorded or hp.HParams().activation
  elif recorded not in (None, activation):
    raise errors.UserError(f"--activation {activation}, but the run's record "
                           f"beside {prefix} says it used {recorded}: leave "
                           "--activation out")
  try:
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = {name: dtype.name
              for name, dtype in reader.get_variable_to_dtype_map().items()}
  except (tf.errors.OpError, ValueError) as e:
    raise errors.UserError(f"{prefix} is not a readable TF checkpoint "
                           f"({errors.first_line(e)}): give one a legacy run wrote") from None
  try:
    hidden_units = _mlp_layout(shapes, dtypes)
  except ValueError as e:
    raise errors.UserError(
        f"{prefix} is not a checkpoint of the homework MLP: {e} (a legacy "
        "run writes hidden1/weights, hidden1/biases, ... "
        "softmax_linear/weights, softmax_linear/biases)") from None
  values = {}
  for layer in hp.layer_names(len(hidden_units)):
    for name in variable_names(layer):
      try:
        values[name] = reader.get_tensor(name)
      except (tf.errors.OpError, IndexError, ValueError) as e:
        raise errors.UserError(
            f"{prefix} is damaged: {name} cannot be read ({errors.first_line(e)}); "
            "train again or restore the checkpoint's files") from None
  return MlpCheckpoint(prefix, hidden_units, activation, values)
