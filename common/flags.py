"""The command-line flags: the training flags and the groups commands share.

hw04 and hw05 define the same training flags; only their defaults differ,
and those come from the one table in `common.hparams`. Other commands
define their own flags and call the group functions here for the shared
ones (--data_dir, --predict, --export_dir, --verbose). A bad flag is one
line and exit status 2 (`parse_flags`), where absl alone would print usage
and exit 1.
"""

import math
import os
import sys

from absl import flags

from common import checkpoint_dir
from common import console
from common import errors
from common import hparams as hp
from common import resources

FLAGS = flags.FLAGS


def parse_flags(argv):
  """absl parsing, but a bad flag is one line and exit status 2."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    errors.fail(str(e), 2)


def define_flags(script: str, flag_values: flags.FlagValues = FLAGS) -> None:
  """Defines every flag with `script`'s defaults ("hw04" or "hw05")."""
  d = hp.SCRIPTS[script]
  fv = dict(flag_values=flag_values)
  flags.DEFINE_enum("optimizer", d.optimizer, hp.OPTIMIZERS,
                    "gd = GradientDescentOptimizer / SGD; adam = Adam.", **fv)
  flags.DEFINE_float("learning_rate", d.learning_rate, "Learning rate.", **fv)
  flags.DEFINE_integer("training_epochs", d.training_epochs,
                       "Passes over the training set.", **fv)
  flags.DEFINE_integer("batch_size", d.batch_size, "Examples per step.", **fv)
  flags.DEFINE_float("keep_prob", d.keep_prob,
                     "Dropout keep probability while training; 1 = no dropout.", **fv)
  flags.DEFINE_float("beta1", d.beta1, "Adam's first-moment decay.", **fv)
  flags.DEFINE_float("beta2", d.beta2, "Adam's second-moment decay.", **fv)
  flags.DEFINE_float("epsilon", d.epsilon,
                     "Adam's epsilon (TF1's default 1e-8, not Keras' 1e-7).", **fv)
  flags.DEFINE_string("hidden_units", ",".join(map(str, d.hidden_units)),
                      "Hidden layer sizes, comma-separated.", **fv)
  flags.DEFINE_enum("activation", d.activation, hp.ACTIVATIONS,
                    "Hidden layer activation.", **fv)
  flags.DEFINE_string("init", d.init,
                      "Weight initializer: uniform:LIMIT, normal:STDDEV, "
                      "xavier or zeros.", **fv)
  flags.DEFINE_string("bias_init", d.bias_init,
                      "Bias initializer: uniform:LIMIT, normal:STDDEV or zeros.",
                      **fv)
  flags.DEFINE_enum("dropout_layers", d.dropout_layers, hp.DROPOUT_LAYERS,
                    "Dropout after each hidden layer only (hidden), on the "
                    "input image too (input_hidden), or on the logits too "
                    "(all).", **fv)
  flags.DEFINE_integer("train_limit", d.train_limit,
                       "Use only the first N training examples.", **fv)
  flags.DEFINE_integer("seed", d.seed,
                       "Makes the run repeatable (weights, dropout, batch order).", **fv)
  define_data_dir_flag(flag_values)
  flags.DEFINE_string("save_path", None,
                      "Write the trained model here, in the port's format: "
                      "a TF1 checkpoint with this prefix (graph mode), or "
                      "a .keras file (Keras).", **fv)
  flags.DEFINE_string("checkpoint_dir", None,
                      "Save a checkpoint here at every epoch end (the last "
                      "3 are kept); a run given a directory that holds one "
                      "resumes from it (same flags; --training_epochs may grow).",
                      **fv)
  flags.DEFINE_string("logdir", None,
                      "Write TensorBoard event files here: `cost` at every "
                      "epoch, `accuracy` at the end.", **fv)
  define_export_flags(flag_values)
  flags.DEFINE_integer("threads", 1,
                       "Threads one TensorFlow op may use; 0 lets TensorFlow "
                       "choose (one per core). Batches of 100 are too small "
                       "for more to pay, and a run's numbers depend on how "
                       "sums are split among threads: with 1, a seed gives "
                       "the same run on any machine with the same kind of "
                       "CPU.", **fv)
  define_kernels_flag(flag_values)
  define_verbose_flag(flag_values)
  _register_validators(flag_values)
  make_key_flags(__name__, flag_values)


def make_key_flags(module: str = __name__,
                   flag_values: flags.FlagValues = FLAGS) -> None:
  """Makes `module`'s flags the main script's own, so --helpshort lists them."""
  for flag in flag_values.get_flags_for_module(module):
    flag_values.register_key_flag_for_module(sys.argv[0], flag)


def _finite(x):
  return x is not None and math.isfinite(x) and abs(x) <= hp.FLOAT32_MAX


def _below_one_in_float32(v):
  # 0.99999999 is 1.0 in float32: Adam would divide by 1 - 1.
  return _finite(v) and 0 <= v and hp.as_float32(v) < 1


def _parses(parse):
  def check(value):
    try:
      parse(value)
    except ValueError:
      return False
    return True
  return check


# Every step is counted in an int64 (TF1's global_step, Keras' iterations),
# at most TRAIN_EXAMPLES steps an epoch.
MAX_EPOCHS = (2**63 - 1) // hp.TRAIN_EXAMPLES
_INT32_MAX = 2**31 - 1
_FLOAT32_RANGE = "within float32's 1.2e-38..3.4e38"


def _register_validators(fv: flags.FlagValues) -> None:
  def check(name, predicate, message):
    flags.register_validator(name, predicate, message=message, flag_values=fv)

  check("learning_rate", hp.positive_float32,
        f"--learning_rate must be a positive number {_FLOAT32_RANGE}")
  check("epsilon", hp.positive_float32,
        f"--epsilon must be a positive number {_FLOAT32_RANGE}")
  check("keep_prob", lambda v: _finite(v) and v <= 1 and hp.positive_float32(v),
        f"--keep_prob must be in (0, 1], {_FLOAT32_RANGE}")
  for beta in ("beta1", "beta2"):
    check(beta, _below_one_in_float32,
          f"--{beta} must be in [0, 1), and below 1 in float32 "
          "(0.99999999 rounds to 1)")
  check("threads", lambda v: 0 <= v <= _INT32_MAX,
        "--threads must be 0 (TensorFlow's choice) or a positive number "
        f"up to {_INT32_MAX}")
  check("training_epochs", lambda v: 1 <= v <= MAX_EPOCHS,
        f"--training_epochs must be in 1..{MAX_EPOCHS} (the step counter "
        "is an int64)")
  check("train_limit", lambda v: v is None or 1 <= v <= hp.TRAIN_EXAMPLES,
        f"--train_limit must be in 1..{hp.TRAIN_EXAMPLES}")
  check("seed", lambda v: v is None or 0 <= v <= hp.SEED_MAX,
        f"--seed must be in 0..{hp.SEED_MAX} (2**32 - 1), the seeds both "
        "ports take")
  check("hidden_units", _parses(hp.parse_hidden_units),
        "--hidden_units must be positive integers separated by commas, "
        "e.g. 256,128,256")
  for name, allowed in (("init", hp.WEIGHT_INITS), ("bias_init", hp.BIAS_INITS)):
    check(name, _parses(lambda v, allowed=allowed: hp.parse_init(v, allowed)),
          f"--{name} must be " + hp.describe_inits(allowed))
  check("save_path", names_a_file,
        "--save_path must name a file, not a directory")
  for name in ("checkpoint_dir", "logdir"):
    check(name, names_a_directory,
          f"--{name} must name a directory (created if missing), not a file")
  flags.register_multi_flags_validator(
      ["batch_size", "train_limit"],
      lambda f: 1 <= f["batch_size"] <= (f["train_limit"] or hp.TRAIN_EXAMPLES),
      message="--batch_size must be between 1 and the number of training "
              f"examples ({hp.TRAIN_EXAMPLES}, or --train_limit)",
      flag_values=fv)
  flags.register_multi_flags_validator(
      ["hidden_units", "optimizer", "batch_size"], _model_fits_in_memory,
      flag_values=fv)


def _model_fits_in_memory(f) -> bool:
  """A validator: the model --hidden_units describes fits in free memory.

  Raises flags.ValidationError with the estimate (common/resources.py), so
  that a model too large is one line now, not an OOM after the import.
  """
  try:
    hidden_units = hp.parse_hidden_units(f["hidden_units"])
  except ValueError:
    return True  # --hidden_units' own validator says what is wrong
  message = resources.refuse_model(hidden_units, f["optimizer"], f["batch_size"])
  if message:
    raise flags.ValidationError(message)
  return True


def hparams_from_flags(flag_values: flags.FlagValues = FLAGS) -> hp.HParams:
  f = flag_values
  return hp.HParams(
      optimizer=f.optimizer, learning_rate=f.learning_rate,
      training_epochs=f.training_epochs, batch_size=f.batch_size,
      keep_prob=f.keep_prob, beta1=f.beta1, beta2=f.beta2, epsilon=f.epsilon,
      hidden_units=hp.parse_hidden_units(f.hidden_units),
      activation=f.activation, init=f.init, bias_init=f.bias_init,
      dropout_layers=f.dropout_layers, train_limit=f.train_limit,
      seed=f.seed)


def define_data_dir_flag(flag_values: flags.FlagValues = FLAGS) -> None:
  flags.DEFINE_string("data_dir", None,
                      "Directory with the MNIST files (else $MNIST_DATA_DIR, "
                      "else MNIST_data/); missing files are downloaded there.",
                      flag_values=flag_values)


def define_kernels_flag(flag_values: flags.FlagValues = FLAGS) -> None:
  flags.DEFINE_enum("kernels", "native", console.KERNELS,
                    "TensorFlow's CPU kernels. native: its defaults, the "
                    "fastest for this CPU; a seed repeats its numbers on "
                    "the same kind of CPU only. portable: oneDNN's custom "
                    "ops off and its instructions capped at AVX2 (about "
                    "1.1-1.2x the CPU time on an AVX-512 machine), which "
                    "gives an AVX-512 machine an AVX2 machine's numbers "
                    "(docs/reproducibility.md).", flag_values=flag_values)


def define_export_flags(flag_values: flags.FlagValues = FLAGS) -> None:
  """--export_dir and --export_version: a SavedModel for serving at BASE/N."""
  fv = dict(flag_values=flag_values)
  flags.DEFINE_string("export_dir", None,
                      "Export the model as a SavedModel for serving to "
                      "BASE/N (TensorFlow Serving's layout; N one more than "
                      "the highest version there).", **fv)
  flags.DEFINE_integer("export_version", None,
                       "The version N of --export_dir's BASE/N; it must not "
                       "exist yet.", **fv)
  flags.register_validator(
      "export_dir", names_a_directory,
      message="--export_dir must name a directory (created if missing), not a file",
      **fv)
  flags.register_validator("export_version", lambda v: v is None or v >= 1,
                           message="--export_version must be a positive number",
                           **fv)
  flags.register_multi_flags_validator(
      ["export_dir", "export_version"],
      lambda f: f["export_version"] is None or f["export_dir"] is not None,
      message="--export_version needs --export_dir", **fv)


def define_verbose_flag(flag_values: flags.FlagValues = FLAGS) -> None:
  flags.DEFINE_boolean("verbose", False, "Show TensorFlow's start-up log lines.",
                       flag_values=flag_values)


def define_predict_flag(flag_values: flags.FlagValues = FLAGS) -> None:
  """--predict: test-set indices whose prediction an evaluation prints."""
  flags.DEFINE_list("predict", None,
                    "Test-set indices, comma-separated (e.g. 0,7,42): print "
                    "the predicted digit and the label of each.",
                    flag_values=flag_values)
  flags.register_validator(
      "predict",
      lambda v: v is None or bool(v) and all(i.isascii() and i.isdigit() for i in v),
      message="--predict must be test-set indices separated by commas, e.g. 0,7,42",
      flag_values=flag_values)


def define_new_run_dir_flag(help_text: str,
                            flag_values: flags.FlagValues = FLAGS) -> None:
  """--checkpoint_dir for a command that writes a new run there.

  Refused while the flags are parsed, before TensorFlow is imported: a
  file, or a directory that is not empty (one holding a run is named so).
  """
  flags.DEFINE_string("checkpoint_dir", None, help_text, flag_values=flag_values)

  def holds_no_run(path):
    if not names_a_directory(path):
      raise flags.ValidationError("--checkpoint_dir must name a directory "
                                  "(created if missing), not a file")
    if path is not None:
      try:
        checkpoint_dir.check_holds_no_run(path, "--checkpoint_dir")
      except errors.UserError as e:
        raise flags.ValidationError(str(e)) from None
    return True
  flags.register_validator("checkpoint_dir", holds_no_run, flag_values=flag_values)


def names_a_directory(path) -> bool:
  """A validator: unset, or a directory or nothing yet (not a file, not "")."""
  return path is None or (path != "" and (os.path.isdir(path)
                                          or not os.path.exists(path)))


def names_a_file(path) -> bool:
  """A validator: unset, or a name that is not a directory (nor ends like one).

  Where it is written is checked before training (common/outputs.py).
  """
  return path is None or (os.path.basename(path) != ""
                          and not os.path.isdir(path))


def in_existing_directory(path) -> bool:
  """A validator: `path` is unset, or its parent directory exists."""
  return path is None or os.path.isdir(os.path.dirname(path) or ".")
