"""The one command-line driver behind legacy/hw0N.py and modern/hw0N.py.

Parses the flags (exit status 2 with one line on a bad value, where absl
alone would print usage and exit 1), imports TensorFlow quietly, then hands
the hyper-parameters to the port's `train.main`. Errors the user can act on
become one line on stderr and an exit status, never a traceback.
"""

import functools
import importlib
import sys

from absl import app

from common import console
from common import errors
from common import flags as common_flags

FLAGS = common_flags.FLAGS


def fail(message: str, status: int) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(status)


def _parse_flags(argv):
  try:
    return FLAGS(argv)
  except common_flags.flags.Error as e:
    fail(str(e), 2)


def _main(train_module: str, argv) -> None:
  if len(argv) > 1:
    fail(f"unexpected arguments {' '.join(argv[1:])!r}; flags look like "
         "--seed=3 (see --helpshort)", 2)
  console.import_tensorflow(verbose=FLAGS.verbose)
  # Imported only now, so that TensorFlow's start-up noise was silenced.
  train = importlib.import_module(train_module)
  try:
    train.main(common_flags.hparams_from_flags(), data_dir=FLAGS.data_dir,
               save_path=FLAGS.save_path)
  except (errors.UserError, errors.NonFiniteCostError) as e:
    fail(str(e), e.exit_status)
  except KeyboardInterrupt:
    fail("interrupted", 130)


def run(script: str, train_module: str) -> None:
  """Runs `train_module`.main with `script`'s defaults ("hw04" or "hw05")."""
  common_flags.define_flags(script)
  app.run(functools.partial(_main, train_module), flags_parser=_parse_flags)
