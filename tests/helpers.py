"""What several test modules need: running entry points as users do, the
printed lines' patterns, the one-error-line check, small data sets.

A plain module, imported as `import helpers` (pytest puts tests/ on the
path); conftest.py holds only fixtures.
"""

import os
import re
import socket
import subprocess
import sys

from common import input_data
from experiments import runner

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Whether the user's shell set it. conftest.py imports this module before
# it imports TensorFlow (which sets it for this process); the programs the
# tests start should not inherit that.
_SHELL_TF_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")

# The summary lines both ports print, as the original scripts did.
EPOCH_LINE = re.compile(r"^Epoch: (\d{4}) cost = (\d+\.\d{9})$")
ACCURACY_LINE = re.compile(r"^Accuracy: ([01]\.\d+)$")


# ---------------------------------------------------------------- processes


def closed_port_url():
  """An http:// URL on 127.0.0.1 where nothing listens."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  return f"http://127.0.0.1:{port}/"


def run_module(module, *args, env=None, timeout=600, stdin=None):
  """Runs `python -m module args` from the repo root; returns CompletedProcess.

  `stdin`, if given, is the text the program reads on its standard input.

  The environment is the user's shell's: without the TF_CPP_MIN_LOG_LEVEL
  this test process set for itself. Every proxy points at a closed port, so
  a program that tries to download never reaches the internet.
  """
  full_env = dict(os.environ)
  full_env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  if _SHELL_TF_LOG_LEVEL is not None:
    full_env["TF_CPP_MIN_LOG_LEVEL"] = _SHELL_TF_LOG_LEVEL
  dead = closed_port_url()
  full_env.update(no_proxy="", NO_PROXY="")
  for scheme in ("http", "https"):
    full_env[f"{scheme}_proxy"] = full_env[f"{scheme.upper()}_PROXY"] = dead
  full_env.update(env or {})
  return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                        cwd=REPO_ROOT, env=full_env, capture_output=True,
                        text=True, timeout=timeout, input=stdin)


# Root writes into a 0o555 directory regardless, through CAP_DAC_OVERRIDE.
# Dropping it from the capability bounding set and exec'ing again gives a
# root process that obeys the mode bits. (Switching to `nobody` would not do:
# the interpreter lives under /root, which `nobody` cannot enter.)
_EXEC_WITHOUT_DAC_OVERRIDE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2
for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
  if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
    sys.exit("cannot drop capability %d: errno %d" % (cap, ctypes.get_errno()))
os.execv(sys.executable, [sys.executable] + sys.argv[1:])
"""


def run_python_without_write_privilege(*args, env=None):
  """`python args` such that a directory's write bits are obeyed, even as root."""
  prefix = ["-c", _EXEC_WITHOUT_DAC_OVERRIDE] if os.geteuid() == 0 else []
  return subprocess.run([sys.executable, *prefix, *map(str, args)],
                        cwd=REPO_ROOT, env=dict(os.environ, **(env or {})),
                        capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------- output


def assert_one_error_line(result, *fragments, status=2, stdout=""):
  """Checks that `result` (a CompletedProcess) failed as the commands fail.

  Exit status `status`; exactly one line on stderr, starting `error: `, with
  every one of `fragments` in it; no traceback; stdout equal to `stdout`
  (None: not checked). Returns the error line.
  """
  assert result.returncode == status, (result.stdout, result.stderr)
  if stdout is not None:
    assert result.stdout == stdout, result.stdout
  assert "Traceback" not in result.stderr, result.stderr
  lines = result.stderr.splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith("error: "), lines[0]
  for fragment in fragments:
    assert fragment in lines[0], (fragment, lines[0])
  return lines[0]


def summary_lines(text):
  """The `Epoch: ` and `Accuracy: ` lines of `text`, in order."""
  return [line for line in text.splitlines()
          if line.startswith(("Epoch: ", "Accuracy: "))]


# ---------------------------------------------------------------- data


def fresh_data_sets(data_sets, seed=None, train_limit=None):
  """`data_sets`' arrays in new DataSets, seeded as
  `input_data.read_data_sets(..., seed=seed, train_limit=train_limit)` seeds
  them (experiments/runner.py), the training split cut to its first
  `train_limit` examples (views: no image is copied). Each caller gets its
  own batch generators."""
  if train_limit is not None:
    train = data_sets.train
    data_sets = input_data.Datasets(
        train=input_data.DataSet(train.images[:train_limit],
                                 train.labels[:train_limit]),
        validation=data_sets.validation, test=data_sets.test)
  return runner.fresh_data_sets(data_sets, seed)


def small_data_sets(data_sets, train_size, test_size=1000, seed=None):
  """The first `train_size` training and `test_size` test images of
  `data_sets`, each split's batches drawn with `seed`; validation as is."""
  return input_data.Datasets(
      train=input_data.DataSet(data_sets.train.images[:train_size],
                               data_sets.train.labels[:train_size], seed=seed),
      validation=data_sets.validation,
      test=input_data.DataSet(data_sets.test.images[:test_size],
                              data_sets.test.labels[:test_size], seed=seed))
