"""Keeps the console for what the programs mean to say.

`import tensorflow` writes absl/oneDNN/CUDA-stub lines straight to file
descriptor 2 from C++, before any logging setting can act, and again when
devices are first initialised (tensorflow#100442, #79029). No environment
variable removes all of them. So, unless verbose, stderr is pointed at /dev/null only while
TensorFlow is imported and its devices are listed, then restored: errors
raised later still show.
"""

import contextlib
import gc
import logging
import os
import platform
import sys
from typing import Dict

VERBOSE_ENV = "MNIST_PORT_VERBOSE"


def verbose_from_env() -> bool:
  return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextlib.contextmanager
def _stderr_silenced():
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  try:
    os.dup2(devnull, 2)
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


def thread_environment(threads: int) -> Dict[str, str]:
  """The variable that sizes TensorFlow's intra-op pool (the threads one op,
  a matmul say, is split over); {} for 0, TensorFlow's own choice.

  TensorFlow reads it once, when it starts (process_util.cc): v1 Sessions
  without a ConfigProto and tf.function alike. The inter-op pool, which
  runs independent ops and tf.data side by side, keeps TensorFlow's size:
  that changes no number, only what overlaps.
  """
  return {"TF_NUM_INTRAOP_THREADS": str(threads)} if threads else {}


# --kernels: which CPU kernels TensorFlow runs (kernel_environment).
KERNELS = ("portable", "native")


def kernel_environment(kernels: str) -> Dict[str, str]:
  """The variables that choose TensorFlow's CPU kernels, read when it starts.

  "native" leaves TensorFlow's defaults: oneDNN picks the widest
  instructions the CPU has, and on some CPUs (AVX-512 ones with VNNI, BF16
  or AMX) TensorFlow turns oneDNN's custom ops on; a seed's numbers then
  depend on the kind of CPU. "portable" turns the custom ops off and caps
  oneDNN at AVX2 on x86-64 (TensorFlow's own MatMul runs on oneDNN's sgemm
  too, so the cap matters with the ops off). An AVX-512 machine then
  computes, digit for digit, what the project's 2026-11-28 machine
  computed by default, by all signs an AVX2 one (measured:
  docs/reproducibility.md).
  """
  if kernels == "native":
    return {}
  if kernels != "portable":
    raise ValueError(f"{kernels!r} is not one of {KERNELS}")
  env = {"TF_ENABLE_ONEDNN_OPTS": "0"}
  if platform.machine().lower() in ("x86_64", "amd64"):
    env["ONEDNN_MAX_CPU_ISA"] = "AVX2"
  return env


@contextlib.contextmanager
def _objects_kept_to_the_end():
  """No garbage collection while TensorFlow and Keras are imported; then
  their objects are frozen (gc.freeze), never traversed again.

  The import creates a few hundred thousand module-level objects that live
  until the process ends. Collecting them is wasted work: during the
  import (0.3 s of full collections), at every later full collection, and
  at exit, where Python's last collection traversed them all (0.9 s of
  every command on one core here; 0.1 s frozen: docs/speed.md).
  """
  was_enabled = gc.isenabled()
  gc.disable()
  try:
    yield
  finally:
    gc.freeze()
    if was_enabled:
      gc.enable()


def import_tensorflow(verbose: bool = False, cluster_task: bool = False):
  """Imports TensorFlow (and Keras) quietly unless `verbose`; returns tf.

  Must run before anything else imports TensorFlow to have any effect.
  """
  with _objects_kept_to_the_end():
    return _import_tensorflow(verbose or verbose_from_env(), cluster_task)


def _import_tensorflow(verbose: bool, cluster_task: bool):
  if verbose:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import keras  # pylint: disable=g-import-not-at-top,unused-import
    return tf
  # Set before the import, or the C++ runtime never sees it: hides the
  # INFO/WARNING lines TF prints after start-up (e.g. "MLIR V1 ... not enabled").
  # A cluster task hides ERROR lines too: its runtime logs a lost peer at
  # every layer on the way to the exception the command reports in one line.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if cluster_task else "2")
  with _stderr_silenced():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import keras  # pylint: disable=g-import-not-at-top,unused-import
    tf.config.list_physical_devices()  # device init: the second burst of noise
  # Deprecation notices from tf.compat.v1 (e.g. dropout's keep_prob) go
  # through the Python logger; the TF1 graph-mode code uses them on purpose.
  tf.get_logger().setLevel(logging.ERROR)
  # Some of TensorFlow logs through absl instead, which absl's app.run shows
  # from INFO up: e.g. a line at every checkpoint a tf.train.Checkpoint saves.
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.WARNING)
  return tf


# tf.lite.Interpreter's constructor in 2.21, as a warnings filter regex.
_TFLITE_DEPRECATION = r"\s*Warning: tf\.lite\.Interpreter is deprecated"


def tflite_interpreter(model_content: bytes, verbose: bool = False):
  """A tf.lite.Interpreter for a .tflite file's bytes, its tensors allocated.

  Quiet unless `verbose`: the constructor warns that tf.lite.Interpreter
  is deprecated for the ai_edge_litert package (which this project does
  not depend on), and the first allocation in a process prints "INFO:
  Created TensorFlow Lite XNNPACK delegate for CPU." from C++ on file
  descriptor 2. That one warning is filtered, and stderr silenced for the
  allocation only; a failure still raises, TFLite's message in it.
  """
  import warnings  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  verbose = verbose or verbose_from_env()
  with warnings.catch_warnings():
    if not verbose:
      warnings.filterwarnings("ignore", _TFLITE_DEPRECATION, UserWarning)
    interpreter = tf.lite.Interpreter(model_content=model_content)
  with contextlib.nullcontext() if verbose else _stderr_silenced():
    interpreter.allocate_tensors()
  return interpreter


_EPOCH_PREFIX = "Epoch: "


def epoch_line(epoch: int, cost: float) -> str:
  """The original per-epoch line: `Epoch: 0001 cost = 15.082601794`."""
  return _EPOCH_PREFIX + "%04d cost = %.9f" % (epoch, cost)


def is_epoch_line(line: str) -> bool:
  return line.startswith(_EPOCH_PREFIX)


def accuracy_line(accuracy) -> str:
  """The original last line, `Accuracy: 0.9483`: a float32 printed as print() does."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  return "Accuracy: " + str(np.float32(accuracy))
