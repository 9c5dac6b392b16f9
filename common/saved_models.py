"""What the commands that read a saved model share, written once.

legacy.evaluate (a TF1 checkpoint), modern.evaluate (a .keras file) and
modern.migrate_checkpoint (a TF1 checkpoint into a .keras file) share:

  run()                  - the driver: flags, a quiet TensorFlow import, and
                           errors the user can act on as one line, exit 2
                           (as common/cli.py does for training).
  print_evaluation()     - the training run's `Accuracy: ...` line, then one
                           `test[7]: predicted 9, label 9` line per --predict.
  read_mlp_checkpoint()  - finds a legacy checkpoint (a prefix, or a directory
                           with a `checkpoint` state file), checks that its
                           variables form the MLP and reads them by name; the
                           activation, which a checkpoint does not hold, from
                           the run's hparams.json beside it or --activation.
"""

import dataclasses
import functools
import json
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
import numpy as np

from common import cli
from common import console
from common import errors
from common import flags as common_flags
from common import hparams as hp
from common import input_data

FLAGS = common_flags.FLAGS

# The state file that tf.compat.v1.train.Saver and tf.train.CheckpointManager
# keep in a checkpoint directory, naming its latest checkpoint.
STATE_FILE = "checkpoint"


def first_line(error: Exception) -> str:
  """An exception's message fit for a one-line error (TF's can span lines)."""
  text = str(error).strip() or type(error).__name__
  return text.splitlines()[0]


# ---------------------------------------------------------------- the driver


def _main(command_main, argv) -> None:
  if len(argv) > 1:
    cli.fail(f"unexpected arguments {' '.join(argv[1:])!r}; flags look like "
             "--name=value (see --helpshort)", 2)
  console.import_tensorflow(verbose=FLAGS.verbose)
  try:
    command_main()
  except errors.UserError as e:
    cli.fail(str(e), e.exit_status)
  except KeyboardInterrupt:
    cli.fail("interrupted", 130)


def run(command: str, command_main) -> None:
  """Runs `command_main()` as `command` ("legacy.evaluate", ...).

  `command_main` reads its flags from FLAGS, and imports TensorFlow only
  inside itself: by then it was imported quietly (common/console.py).
  """
  common_flags.define_evaluate_flags(command)
  app.run(functools.partial(_main, command_main), flags_parser=cli.parse_flags)


# ---------------------------------------------------------------- evaluation


@dataclasses.dataclass
class Evaluation:
  accuracy: np.float32     # on the whole test set, as training computes it
  predictions: np.ndarray  # the predicted digit of every test image


def read_test_set(data_dir: Optional[str] = None) -> input_data.DataSet:
  """MNIST's 10,000 test images, from where training reads them (--data_dir)."""
  return input_data.read_data_sets(data_dir, one_hot=True).test


def predict_indices(predict: Optional[Sequence[str]],
                    test: input_data.DataSet) -> List[int]:
  """--predict's indices as ints; raises UserError for one past the test set."""
  indices = [int(i) for i in predict or ()]
  for index in indices:
    if index >= test.num_examples:
      raise errors.UserError(
          f"--predict index {index} is out of range: the test set has "
          f"{test.num_examples} images, 0..{test.num_examples - 1}")
  return indices


def prediction_line(index: int, predicted: int, label: int) -> str:
  """One --predict line: `test[7]: predicted 9, label 9`."""
  return f"test[{index}]: predicted {predicted}, label {label}"


def print_evaluation(evaluation: Evaluation, test: input_data.DataSet,
                     indices: Sequence[int] = (), print_fn=print) -> None:
  print_fn(console.accuracy_line(evaluation.accuracy))
  labels = test.labels.argmax(axis=1)
  for index in indices:
    print_fn(prediction_line(index, int(evaluation.predictions[index]),
                             int(labels[index])))


# ------------------------------------------------------ the legacy checkpoint


def legacy_variable_names(layer: str) -> Tuple[str, str]:
  """A layer's weights and biases as legacy/mlp.py names them."""
  return f"{layer}/weights", f"{layer}/biases"


def _is_checkpoint(prefix: str) -> bool:
  return os.path.isfile(prefix + ".index")


def find_checkpoint(path: str) -> str:
  """The prefix of the checkpoint `path` names.

  `path` is a prefix (what legacy's --save_path wrote: PATH.index and
  PATH.data-*) or a directory whose state file names its latest checkpoint.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  hint = ("give the prefix a legacy run's --save_path wrote, or a directory "
          f"with a `{STATE_FILE}` state file")
  if os.path.isdir(path):
    state_file = os.path.join(path, STATE_FILE)
    if not os.path.isfile(state_file):
      raise errors.UserError(f"{path} is a directory without a `{STATE_FILE}` "
                             f"state file: {hint}")
    # What tf.train.latest_checkpoint reads, without the error it logs (a
    # second line on stderr) when the checkpoint named is gone.
    state = tf.train.get_checkpoint_state(path)
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
  (common/checkpoints.py); a --save_path prefix has none. Raises UserError
  if the record is damaged or holds a modern run.
  """
  from common import checkpoints  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.dirname(prefix), checkpoints.RECORD_NAME)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      record = json.load(f)
    port, activation = record["port"], record["hparams"]["activation"]
  except (OSError, ValueError, TypeError, KeyError) as e:
    raise errors.UserError(f"{path}, the record of the run, is damaged "
                           f"({type(e).__name__}); restore it or delete it and "
                           "give --activation") from None
  if port != "legacy":
    raise errors.UserError(f"{path} records a run of the {port} port: its "
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
  while legacy_variable_names(f"hidden{num_hidden + 1}")[0] in shapes:
    num_hidden += 1
  if not num_hidden:
    raise ValueError("it has no variable hidden1/weights")
  names = hp.layer_names(num_hidden)
  fan_in = hp.IMAGE_PIXELS
  hidden_units = []
  for layer in names:
    weights, biases = legacy_variable_names(layer)
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
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
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
                           f"({first_line(e)}): give one a legacy run wrote") from None
  try:
    hidden_units = _mlp_layout(shapes, dtypes)
  except ValueError as e:
    raise errors.UserError(
        f"{prefix} is not a checkpoint of the homework MLP: {e} (a legacy "
        "run writes hidden1/weights, hidden1/biases, ... "
        "softmax_linear/weights, softmax_linear/biases)") from None
  values = {}
  for layer in hp.layer_names(len(hidden_units)):
    for name in legacy_variable_names(layer):
      try:
        values[name] = reader.get_tensor(name)
      except (tf.errors.OpError, IndexError, ValueError) as e:
        raise errors.UserError(
            f"{prefix} is damaged: {name} cannot be read ({first_line(e)}); "
            "train again or restore the checkpoint's files") from None
  return MlpCheckpoint(prefix, hidden_units, activation, values)
