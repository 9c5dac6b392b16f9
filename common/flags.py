"""The command-line flags of both ports, gathered in one place.

hw04 and hw05 define the same flags; only their defaults differ, and those
come from the one table in `common.hparams`.
"""

import math
import os
import sys

from absl import flags

from common import hparams as hp

FLAGS = flags.FLAGS


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
  flags.DEFINE_string("data_dir", None,
                      "Directory with the MNIST files (else $MNIST_DATA_DIR, "
                      "else MNIST_data/); missing files are downloaded there.", **fv)
  flags.DEFINE_string("save_path", None,
                      "Write the trained model here: legacy a TF1 checkpoint with this "
                      "prefix, modern a .keras file.", **fv)
  flags.DEFINE_boolean("verbose", False,
                       "Show TensorFlow's start-up log lines.", **fv)
  _register_validators(flag_values)
  # Make them the main script's own flags, so --helpshort lists them.
  for flag in flag_values.get_flags_for_module(__name__):
    flag_values.register_key_flag_for_module(sys.argv[0], flag)


_FLOAT32_MAX = 3.4028234663852886e38  # the graphs compute in float32


def _finite(x):
  return x is not None and math.isfinite(x) and abs(x) <= _FLOAT32_MAX


def _parses(parse):
  def check(value):
    try:
      parse(value)
    except ValueError:
      return False
    return True
  return check


def _register_validators(fv: flags.FlagValues) -> None:
  def check(name, predicate, message):
    flags.register_validator(name, predicate, message=message, flag_values=fv)

  check("learning_rate", lambda v: _finite(v) and v > 0,
        "--learning_rate must be a positive number")
  check("epsilon", lambda v: _finite(v) and v > 0,
        "--epsilon must be a positive number")
  check("keep_prob", lambda v: _finite(v) and 0 < v <= 1,
        "--keep_prob must be in (0, 1]")
  for beta in ("beta1", "beta2"):
    check(beta, lambda v: _finite(v) and 0 <= v < 1,
          f"--{beta} must be in [0, 1)")
  check("training_epochs", lambda v: v >= 1,
        "--training_epochs must be at least 1")
  check("train_limit", lambda v: v is None or 1 <= v <= hp.TRAIN_EXAMPLES,
        f"--train_limit must be in 1..{hp.TRAIN_EXAMPLES}")
  check("hidden_units", _parses(hp.parse_hidden_units),
        "--hidden_units must be positive integers separated by commas, "
        "e.g. 256,128,256")
  for name, allowed in (("init", hp.WEIGHT_INITS), ("bias_init", hp.BIAS_INITS)):
    check(name, _parses(lambda v, allowed=allowed: hp.parse_init(v, allowed)),
          f"--{name} must be " + hp.describe_inits(allowed))
  check("save_path", lambda v: v is None or os.path.isdir(os.path.dirname(v) or "."),
        "--save_path must be in an existing directory")
  flags.register_multi_flags_validator(
      ["batch_size", "train_limit"],
      lambda f: 1 <= f["batch_size"] <= (f["train_limit"] or hp.TRAIN_EXAMPLES),
      message="--batch_size must be between 1 and the number of training "
              f"examples ({hp.TRAIN_EXAMPLES}, or --train_limit)",
      flag_values=fv)


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
