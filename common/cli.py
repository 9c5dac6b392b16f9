"""The command drivers: flags, a quiet TensorFlow import, one-line errors.

  run_training_command(script, port) - `python -m PORT.hw0N`: parses the
      training flags, imports TensorFlow quietly, reads MNIST as the port
      asks, and hands the hyper-parameters and data to port.run_training.
  run_command(define_flags, main)    - any other command (evaluate,
      migrate): its own flags, the quiet import, then main().

Errors the user can act on become one line on stderr and an exit status
(common/errors.py), never a traceback: bad input 2, a non-finite cost 3,
Ctrl-C 130, SIGTERM 143. What can be checked before the 5-10 s TensorFlow
import is checked first: the flags (common/flags.py), the output paths
(common/outputs.py) and the data files (common/input_data.py); Ctrl-C and
SIGTERM are one line from then on, during the import too.
"""

import concurrent.futures
import contextlib
import functools
import os
import signal
from typing import Callable, Optional

from absl import app

from common import cluster
from common import console
from common import errors
from common import flags as common_flags
from common import input_data
from common import outputs
from common import ports
from common import serving
from common import timings

FLAGS = common_flags.FLAGS


def _raise_terminated(signum, frame):
  raise errors.Terminated()


def _stop_on_sigterm() -> None:
  """SIGTERM (kill, a scheduler's stop) ends the command as Ctrl-C does: with
  an exception, so one line, once a checkpoint being saved is complete.
  Installed before the import, which SIGTERM would otherwise end silently."""
  signal.signal(signal.SIGTERM, _raise_terminated)


def _no_arguments(argv, example: str) -> None:
  if len(argv) > 1:
    errors.fail(f"unexpected arguments {' '.join(argv[1:])!r}; flags look "
                f"like {example} (see --helpshort)", 2)


@contextlib.contextmanager
def _one_line_errors(checkpoint_dir: Optional[str] = None):
  """The command's errors as one line; a stopped run says how to resume."""
  def stopped(what: str) -> str:
    if checkpoint_dir:
      return (f"{what}; run the same command again to resume from the last "
              f"epoch saved in --checkpoint_dir {checkpoint_dir}")
    return what
  try:
    yield
  except (errors.UserError, errors.NonFiniteCostError) as e:
    errors.fail(str(e), e.exit_status)
  except errors.TaskLostError as e:
    errors.fail(stopped(str(e)), e.exit_status)
  except KeyboardInterrupt:
    errors.fail(stopped("interrupted"), 130)
  except errors.Terminated:
    errors.fail(stopped("terminated"), errors.Terminated.exit_status)


def _train(port: ports.Port, argv) -> None:
  _no_arguments(argv, "--seed=3")
  _stop_on_sigterm()
  timer = timings.PhaseTimer.from_environment()
  with _one_line_errors(FLAGS.checkpoint_dir), \
       outputs.checked(outputs.output_paths(FLAGS)):
    # A task of a cluster (common/cluster.py), or None: one process alone.
    role = port.cluster.role() if port.cluster else None
    cluster_option = {"role": role} if role else {}
    chief = role is None or role.is_chief
    # A parameter server holds variables only: it reads no data.
    reads_data = not (role and role.job == "ps")
    # Everything that needs no TensorFlow is checked before its import.
    suffix_error = outputs.check_suffix(FLAGS.save_path, port.save_path_suffix)
    if suffix_error:
      raise errors.UserError(suffix_error)
    # Only the chief writes the model out.
    export = (serving.prepare_export(FLAGS.export_dir, FLAGS.export_version)
              if chief else None)
    if reads_data:
      input_data.maybe_download(input_data.resolve_data_dir(FLAGS.data_dir))
    os.environ.update(console.thread_environment(FLAGS.threads))
    os.environ.update(console.kernel_environment(FLAGS.kernels))
    hparams = common_flags.hparams_from_flags()
    with concurrent.futures.ThreadPoolExecutor(1) as reader:
      # The data is read while TensorFlow imports, on the other core: zlib
      # and numpy let go of the interpreter while they work.
      data_sets = (reader.submit(port.read_data_sets, FLAGS.data_dir, hparams)
                   if reads_data else None)
      console.import_tensorflow(verbose=FLAGS.verbose, cluster_task=role is not None)
      timer.mark("imported")
      data_sets = data_sets.result() if data_sets else None
    timer.mark("data")
    port.run_training(hparams, data_sets, save_path=FLAGS.save_path,
                      checkpoint_dir=FLAGS.checkpoint_dir, logdir=FLAGS.logdir,
                      export_target=export, print_fn=timer.print_line,
                      **cluster_option)
  if chief:  # the others print no lines to time
    timer.write()


def run_training_command(script: str, port: ports.Port) -> None:
  """Trains `port` with `script`'s defaults ("hw04" or "hw05")."""
  common_flags.define_flags(script)
  if port.cluster:
    port.cluster.define_flags(FLAGS)
    for module in (port.cluster.define_flags.__module__, cluster.__name__):
      common_flags.make_key_flags(module)
  app.run(functools.partial(_train, port), flags_parser=common_flags.parse_flags)


def _command(main: Callable[[], None], argv) -> None:
  _no_arguments(argv, "--name=value")
  _stop_on_sigterm()
  with _one_line_errors(), outputs.checked(outputs.output_paths(FLAGS)):
    if "data_dir" in FLAGS:  # the data files, before the import too
      input_data.maybe_download(input_data.resolve_data_dir(FLAGS.data_dir))
    os.environ.update(console.kernel_environment(FLAGS.kernels))
    console.import_tensorflow(verbose=FLAGS.verbose)
    main()


def run_command(define_flags: Callable[[], None], main: Callable[[], None]) -> None:
  """Runs `main()` after `define_flags()` defined its flags (and --kernels,
  --verbose).

  `main` reads its flags from FLAGS, and imports TensorFlow only inside
  itself: by then it was imported quietly (common/console.py).
  """
  define_flags()
  common_flags.define_kernels_flag()
  common_flags.define_verbose_flag()
  common_flags.make_key_flags()
  app.run(functools.partial(_command, main), flags_parser=common_flags.parse_flags)
