"""The one command-line driver behind legacy/hw0N.py and modern/hw0N.py.

Parses the flags (exit status 2 with one line on a bad value, where absl
alone would print usage and exit 1), imports TensorFlow quietly, reads MNIST,
then hands the hyper-parameters and data to the port's `train.run_training`.
Errors the user can act on become one line on stderr and an exit status,
never a traceback.
"""

import functools
import importlib
import json
import os
import signal
import sys
import time

from absl import app

from common import console
from common import errors
from common import flags as common_flags
from common import input_data

FLAGS = common_flags.FLAGS
# If set, a JSON file to write the run's phase times to (used by make bench).
TIMINGS_ENV = "MNIST_PORT_TIMINGS"


def fail(message: str, status: int) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(status)


def _raise_terminated(signum, frame):
  raise errors.Terminated()


def _stopped(what: str) -> str:
  """The line for a run stopped by a signal, saying how to go on."""
  if FLAGS.checkpoint_dir:
    return (f"{what}; run the same command again to resume from the last "
            f"epoch saved in --checkpoint_dir {FLAGS.checkpoint_dir}")
  return what


def parse_flags(argv):
  """absl parsing, but a bad flag is one line and exit status 2."""
  try:
    return FLAGS(argv)
  except common_flags.flags.Error as e:
    fail(str(e), 2)


class _PhaseTimer:
  """Times import / data / train / evaluate from the lines the run prints."""

  def __init__(self):
    self.marks = {"start": time.perf_counter()}

  def mark(self, phase: str) -> None:
    self.marks[phase] = time.perf_counter()

  def print_line(self, line: str) -> None:
    print(line, flush=True)
    self.mark("last_epoch" if line.startswith("Epoch:") else "evaluated")

  def write(self, path: str) -> None:
    m = self.marks
    phases = {"import_s": m["imported"] - m["start"],
              "data_s": m["data"] - m["imported"],
              "train_s": m["last_epoch"] - m["data"],
              "evaluate_s": m["evaluated"] - m["last_epoch"]}
    with open(path, "w") as f:
      json.dump(phases, f)


def _main(train_module: str, argv) -> None:
  if len(argv) > 1:
    fail(f"unexpected arguments {' '.join(argv[1:])!r}; flags look like "
         "--seed=3 (see --helpshort)", 2)
  timer = _PhaseTimer()
  os.environ.update(console.thread_environment(FLAGS.threads))
  console.import_tensorflow(verbose=FLAGS.verbose)
  # Imported only now, so that TensorFlow's start-up noise was silenced.
  train = importlib.import_module(train_module)
  timer.mark("imported")
  hparams = common_flags.hparams_from_flags()
  # SIGTERM (kill, a scheduler's stop) ends the run as Ctrl-C does: with an
  # exception, once a checkpoint being saved is complete.
  signal.signal(signal.SIGTERM, _raise_terminated)
  try:
    data_sets = input_data.read_data_sets(
        FLAGS.data_dir, one_hot=True, dtype=train.IMAGE_DTYPE,
        seed=hparams.seed, train_limit=hparams.train_limit)
    timer.mark("data")
    train.run_training(hparams, data_sets, save_path=FLAGS.save_path,
                       checkpoint_dir=FLAGS.checkpoint_dir, logdir=FLAGS.logdir,
                       print_fn=timer.print_line)
  except (errors.UserError, errors.NonFiniteCostError) as e:
    fail(str(e), e.exit_status)
  except KeyboardInterrupt:
    fail(_stopped("interrupted"), 130)
  except errors.Terminated:
    fail(_stopped("terminated"), errors.Terminated.exit_status)
  if os.environ.get(TIMINGS_ENV):
    timer.write(os.environ[TIMINGS_ENV])


def run(script: str, train_module: str) -> None:
  """Trains `train_module` with `script`'s defaults ("hw04" or "hw05")."""
  common_flags.define_flags(script)
  app.run(functools.partial(_main, train_module), flags_parser=parse_flags)
