"""A half-trained run across the ports: weights, Adam's slots, the step count.

  read_legacy_run()          - a legacy --checkpoint_dir checkpoint and its record.
  read_modern_run()          - a modern --checkpoint_dir, or a compiled .keras file.
  write_modern_run()         - a modern --checkpoint_dir that modern.hw0N resumes.
  keras_model()              - the compiled Keras model holding a run's state.
  write_legacy_run()         - a legacy --checkpoint_dir that legacy.hw0N resumes.
  write_legacy_checkpoint()  - one TF1 checkpoint with the state (a --save_path).

Values travel under legacy's names (names.py): weights "hidden1/weights",
Adam's slots "hidden1/weights/Adam" (m) and "hidden1/weights/Adam_1" (v).
Both ports' Adam is TF1's update with epsilon outside the square root
(MIGRATION.md); they keep the bias correction differently: TF1 in
`beta1_power` and `beta2_power`, multiplied by beta after every step (so
beta^(t+1) after t steps), Keras as the step count t (`iterations`), from
which it computes beta^(t+1) inside each step. So t is what crosses over:
global_step <-> iterations, checked against beta1_power while that is a
normal float32, recomputed as TF1 would hold it going back.
"""

import dataclasses
import os
import tempfile
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from common import checkpoint_dir
from common import errors
from common import files
from common import hparams as hp
from common import input_data
from legacy import checkpoints as legacy_checkpoints
from legacy import train as legacy_train
from migration import names
from migration import transplant
from modern import checkpoints as modern_checkpoints
from modern import train as modern_train

v1 = tf.compat.v1

POWERS = {"beta1_power": "beta1", "beta2_power": "beta2"}  # TF1 name -> HParams field
STEP = "global_step"
_TINY = np.finfo(np.float32).tiny  # the smallest normal float32


@dataclasses.dataclass(frozen=True)
class RunState:
  """A run between two steps, as either port holds it, under legacy's names."""
  hparams: hp.HParams  # what it trains with, the seed filled in
  weights: Dict[str, np.ndarray]  # "hidden1/weights" -> value
  slots: Dict[str, np.ndarray]  # "hidden1/weights/Adam" -> value; {} for gd
  step: int  # optimizer steps taken: global_step, iterations
  # Only a --checkpoint_dir run has these: its record and its epochs.
  record: Optional[checkpoint_dir.Record] = None
  training: Optional[checkpoint_dir.TrainingState] = None

  def describe(self) -> str:
    if self.hparams.optimizer == "adam":
      return f"Adam's slots and step count ({self.step} steps)"
    return (f"its step count ({self.step} steps; gradient descent keeps no "
            "other optimizer state)")


def tf1_power(beta: float, step: int) -> np.float32:
  """beta1_power as TF1's Adam holds it after `step` steps: beta^(step + 1).

  Multiplied step by step in float32, as the graph does, and 0 once below
  the smallest normal float32 (TensorFlow's CPU kernels flush denormals).
  """
  beta = np.float32(beta)
  power = beta
  for _ in range(step):
    power = np.float32(power * beta)
    if power < _TINY:
      return np.float32(0)
  return power


def check_step_count(step: int, powers: Dict[str, float], hparams: hp.HParams,
                     where: str) -> None:
  """Raises UserError unless beta1_power and beta2_power agree with `step`.

  Only while TF1's power is a normal float32: after that (beta1 0.6: some
  170 steps) it is 0 or denormal, and both ports' bias correction is 1.
  """
  for name, field in POWERS.items():
    beta = getattr(hparams, field)
    expected = tf1_power(beta, step)
    tolerance = min(1e-3, (1 - beta) / 2) * expected
    if expected and not abs(powers[name] - expected) <= tolerance:
      raise errors.UserError(
          f"{where}: {STEP} {step} and {name} {powers[name]:.6g} disagree "
          f"({field} {beta:g} to the power {STEP} + 1 is {expected:.6g}): the "
          "checkpoint is damaged, or its hparams.json is another run's")


# ---------------------------------------------------------------- legacy in


def _recorded_run(prefix: str, port: str) -> checkpoint_dir.Record:
  """The record of the --checkpoint_dir run `prefix` belongs to."""
  record = checkpoint_dir.read_record(os.path.dirname(prefix))
  if record is None:
    raise errors.UserError(
        f"{prefix} has no {checkpoint_dir.RECORD_NAME} beside it, which holds "
        "the optimizer's settings and the run's flags: migrate a "
        "--checkpoint_dir run's checkpoint")
  if record.port != port:
    raise errors.UserError(f"{prefix} belongs to a run of the {record.port} "
                           f"port, not {port}")
  return record


def _tensor(reader, prefix: str, name: str, why: str):
  if not reader.has_tensor(name):
    raise errors.UserError(f"{prefix} has no {name}: {why}")
  try:
    return reader.get_tensor(name)
  except (tf.errors.OpError, IndexError, ValueError) as e:
    raise errors.UserError(f"{prefix} is damaged: {name} cannot be read "
                           f"({errors.first_line(e)})") from None


def _legacy_slots(reader, checkpoint, hparams: hp.HParams) -> Dict[str, np.ndarray]:
  """Adam's m and v for every weight, each the shape of its weight."""
  if hparams.optimizer != "adam":
    return {}
  if not reader.has_tensor(names.adam_slot_names("hidden1/weights")[0]):
    raise errors.UserError(
        f"{checkpoint.prefix} holds no Adam slots (no hidden1/weights/Adam), "
        "but its run trained with Adam: its optimizer state is lost; migrate "
        "without --with_optimizer (the weights alone)")
  slots = {}
  for name, weight in checkpoint.values.items():
    for slot in names.adam_slot_names(name):
      value = _tensor(reader, checkpoint.prefix, slot, "a legacy Adam run "
                      "saves both slots of every weight")
      if value.shape != weight.shape:
        raise errors.UserError(
            f"{checkpoint.prefix}: {slot} has shape {list(value.shape)}, but "
            f"{name} {list(weight.shape)}: the checkpoint is damaged")
      slots[slot] = value
  return slots


def read_legacy_run(path: str, activation: Optional[str] = None) -> RunState:
  """The state of the legacy --checkpoint_dir run whose checkpoint `path` names.

  Raises UserError (one line) for a checkpoint without its run's record, a
  record it does not fit, missing or misshapen slots, or a step count that
  beta1_power or beta2_power contradicts.
  """
  checkpoint = legacy_checkpoints.read_mlp_checkpoint(path, activation)
  prefix = checkpoint.prefix
  record = _recorded_run(prefix, legacy_checkpoints.PORT_NAME)
  hparams = record.run_hparams
  if hparams.hidden_units != checkpoint.hidden_units:
    raise errors.UserError(f"{prefix} holds hidden units {checkpoint.hidden_units}, "
                           f"its run's record {hparams.hidden_units}")
  reader = tf.train.load_checkpoint(prefix)
  step = int(_tensor(reader, prefix, STEP, "every legacy run counts its steps"))
  slots = _legacy_slots(reader, checkpoint, hparams)
  if hparams.optimizer == "adam":
    powers = {name: float(_tensor(reader, prefix, name, "a legacy Adam run "
                                  "saves its bias-correction state"))
              for name in POWERS}
    check_step_count(step, powers, hparams, prefix)
  state = _tensor(reader, prefix, "training_state",
                  "a --checkpoint_dir checkpoint records its epochs")
  try:
    training = checkpoint_dir.TrainingState.from_json(state.decode())
  except ValueError as e:
    raise errors.UserError(f"{prefix}: {e}") from None
  return RunState(hparams, checkpoint.values, slots, step, record, training)


# ---------------------------------------------------------------- modern out


def keras_model(state: RunState):
  """The compiled Keras model for `state.hparams`, holding the whole state.

  Weights, Adam's momentum and velocity (or none: SGD), the step count in
  `optimizer.iterations`, and each Dropout layer's seed generator moved
  past the steps taken, as a modern run of the same seed would have it.
  """
  import keras  # pylint: disable=g-import-not-at-top
  model = modern_train.build_model(state.hparams)
  optimizer = model.optimizer  # built: its slots exist
  transplant.set_keras_weights(model, state.weights)
  for name in state.weights if state.slots else ():
    variable = transplant.keras_variable(model, name)
    for keras_slot, legacy_slot in zip(
        transplant.keras_adam_slots(optimizer, variable),
        names.adam_slot_names(name)):
      keras_slot.assign(state.slots[legacy_slot])
  optimizer.iterations.assign(state.step)
  for layer in model.layers:
    if isinstance(layer, keras.layers.Dropout):
      # [seed, calls]: one call a training step.
      seed = layer.seed_generator.state.numpy()[0]
      layer.seed_generator.state.assign([seed, state.step])
  return model


def _training_state(state: RunState, where: str) -> checkpoint_dir.TrainingState:
  if state.training is None:
    raise errors.UserError(f"{where} records no epochs (not a --checkpoint_dir "
                           "run's checkpoint): it cannot be resumed")
  return state.training


def write_modern_run(state: RunState, target: str) -> None:
  """A modern --checkpoint_dir at `target` (new or empty) resuming `state`.

  Its record is the run's (flags and seed); its checkpoint is numbered by
  the epochs done. Written in a temporary directory renamed into place.
  """
  training = _training_state(state, "the legacy checkpoint")
  with files.atomic_directory(target, "--checkpoint_dir") as tmp:
    checkpoint_dir.write_record(tmp, modern_checkpoints.PORT_NAME,
                                state.record.hparams, state.record.seed,
                                state.record.machine)
    model = keras_model(state)
    checkpointer = modern_checkpoints.Checkpoints(tmp, model)
    # Modern draws each epoch's batch order from (seed, epoch): no order to keep.
    checkpointer.save(checkpoint_dir.TrainingState(training.epoch,
                                                   training.epoch_costs))


# ---------------------------------------------------------------- modern in


def _keras_hparams(model, path: str) -> hp.HParams:
  """What a compiled .keras file says of its run: sizes, activation, optimizer."""
  import keras  # pylint: disable=g-import-not-at-top
  optimizer = getattr(model, "optimizer", None)
  if optimizer is None or not optimizer.built:
    raise errors.UserError(
        f"{path} holds no optimizer state (saved uncompiled or untrained, e.g. "
        "by modern.migrate_checkpoint without --with_optimizer)")
  if not isinstance(optimizer, (keras.optimizers.Adam, keras.optimizers.SGD)):
    raise errors.UserError(f"{path} was trained with {type(optimizer).__name__}, "
                           "which legacy has no counterpart for: Adam or SGD only")
  dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
  config = dict(hidden_units=tuple(layer.units for layer in dense[:-1]),
                activation=dense[0].get_config()["activation"],
                learning_rate=float(optimizer.learning_rate.numpy()))
  if isinstance(optimizer, keras.optimizers.Adam):
    config.update(optimizer="adam", beta1=float(optimizer.beta_1),
                  beta2=float(optimizer.beta_2), epsilon=float(optimizer.epsilon))
  else:
    config.update(optimizer="gd")
  return hp.HParams(**config)


def _read_modern_directory(directory: str):
  """(model, record, training state) of a modern --checkpoint_dir."""
  record = checkpoint_dir.read_record(directory)
  if record is None or record.port != modern_checkpoints.PORT_NAME:
    what = (f"a run of the {record.port} port" if record else
            f"no {checkpoint_dir.RECORD_NAME}")
    raise errors.UserError(f"--checkpoint {directory} holds {what}: give a "
                           "modern --checkpoint_dir or a .keras file")
  model = modern_train.build_model(record.run_hparams)
  training = modern_checkpoints.Checkpoints(directory, model).restore()
  if training is None:
    raise errors.UserError(f"--checkpoint {directory} holds no checkpoint yet: "
                           "nothing to migrate")
  return model, record, training


def read_modern_run(path: str) -> RunState:
  """The state of a modern --checkpoint_dir's latest checkpoint, or of a .keras file.

  A .keras file must have been saved compiled, after training: with its
  optimizer's variables. It holds no run record and no epochs.
  """
  if path.endswith(".keras"):
    model = modern_checkpoints.load_model(path, compile=True)
    hparams, record, training = _keras_hparams(model, path), None, None
  elif os.path.isdir(path):
    model, record, training = _read_modern_directory(path)
    hparams = record.run_hparams
  else:
    raise errors.UserError(f"--checkpoint {path} is neither a .keras file nor "
                           "a modern --checkpoint_dir")
  weights = transplant.keras_weights(model)
  slots = {}
  if hparams.optimizer == "adam":
    for name in weights:
      variable = transplant.keras_variable(model, name)
      for keras_slot, legacy_slot in zip(
          transplant.keras_adam_slots(model.optimizer, variable),
          names.adam_slot_names(name)):
        slots[legacy_slot] = keras_slot.numpy()
  step = int(model.optimizer.iterations.numpy())
  return RunState(hparams, weights, slots, step, record, training)


# ---------------------------------------------------------------- legacy out


def legacy_values(state: RunState) -> Dict[str, np.ndarray]:
  """Every optimizer variable of the legacy graph, by its TF1 name."""
  values = {**state.weights, **state.slots, STEP: np.int64(state.step)}
  if state.hparams.optimizer == "adam":
    for name, field in POWERS.items():
      values[name] = tf1_power(getattr(state.hparams, field), state.step)
  return values


def legacy_batch_order(hparams: hp.HParams, epochs: int) -> dict:
  """Legacy's batch order after `epochs` epochs of a run of `hparams.seed`.

  What read_data_sets' training DataSet for that seed holds after the
  epochs' next_batch calls: drawn again on an image-less DataSet of the
  same size (only the count of examples decides the order).
  """
  examples = hparams.train_limit or hp.TRAIN_EXAMPLES
  empty = np.zeros((examples, 0), np.uint8)
  train = input_data.DataSet(empty, empty,
                             seed=input_data.split_seeds(hparams.seed)[0])
  for _ in range(epochs * (examples // hparams.batch_size)):
    train.next_batch(hparams.batch_size)
  return legacy_checkpoints.batch_order(train)


def _legacy_session(state: RunState, hparams: hp.HParams, checkpointer_dir=None):
  """A built legacy graph holding `state`, its Session and its Checkpoints."""
  model = legacy_train.build_model(hparams)
  checkpointer = (legacy_checkpoints.Checkpoints(checkpointer_dir, model.graph)
                  if checkpointer_dir else None)
  sess = v1.Session(graph=model.graph)
  sess.run(model.init_op)
  transplant.set_legacy_values(sess, legacy_values(state))
  return model, sess, checkpointer


def check_resumable(state: RunState) -> checkpoint_dir.TrainingState:
  """The epochs of a modern run that can become a legacy --checkpoint_dir.

  Raises UserError for a .keras file's state: no record, no epochs.
  """
  if state.record is None:
    raise errors.UserError(
        "a .keras file holds no run record (flags, seed, epochs done), so it "
        "cannot become a --checkpoint_dir: give a modern --checkpoint_dir, or "
        "write a --save_path checkpoint")
  return _training_state(state, "the modern checkpoint")


def write_legacy_run(state: RunState, target: str) -> None:
  """A legacy --checkpoint_dir at `target` (new or empty) resuming `state`.

  Its training_state holds the batch order a legacy run of the seed would
  have after the epochs done, and a resumed run replays its dropout ops'
  draws of the steps done (legacy/checkpoints.py): the continued run draws
  what a legacy run of that seed would from here on.
  """
  training = check_resumable(state)
  with files.atomic_directory(target, "--checkpoint_dir") as tmp:
    checkpoint_dir.write_record(tmp, legacy_checkpoints.PORT_NAME,
                                state.record.hparams, state.record.seed,
                                state.record.machine)
    _, sess, checkpointer = _legacy_session(state, state.hparams, tmp)
    with sess:
      checkpointer.save(sess, checkpoint_dir.TrainingState(
          training.epoch, training.epoch_costs,
          legacy_batch_order(state.hparams, training.epoch)))


def write_legacy_checkpoint(state: RunState, prefix: str) -> None:
  """One TF1 checkpoint at `prefix`, as legacy's --save_path writes one.

  Written under a temporary directory beside it, its files then renamed
  into place, the index last.
  """
  # Dropout adds no variables: the graph without it holds the same ones.
  hparams = dataclasses.replace(state.hparams, keep_prob=1.0)
  directory, name = os.path.split(os.path.abspath(prefix))
  with tempfile.TemporaryDirectory(dir=directory, prefix=f".{name}.") as tmp:
    model, sess, _ = _legacy_session(state, hparams)
    with sess:
      legacy_checkpoints.save_model(sess, model.graph, os.path.join(tmp, name))
    written = sorted(f for f in os.listdir(tmp) if f.startswith(f"{name}."))
    for file_name in sorted(written, key=lambda f: f.endswith(".index")):
      os.replace(os.path.join(tmp, file_name), os.path.join(directory, file_name))


def resume_command(port: str, record: checkpoint_dir.Record, directory: str) -> str:
  """The command that resumes the run in `directory`: the run's own flags.

  The script whose defaults it shares (hw05 for Adam, hw04 for gradient
  descent), and every recorded flag that differs from them.
  """
  script = "hw05" if record.hparams.optimizer == "adam" else "hw04"
  defaults = dataclasses.asdict(hp.SCRIPTS[script])
  flags = [f"--checkpoint_dir {directory}"]
  for name, value in dataclasses.asdict(record.hparams).items():
    if name != "training_epochs" and value != defaults[name]:
      shown = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
      flags.append(f"--{name} {shown}")
  return f"python -m {port}.{script} {' '.join(flags)}"
