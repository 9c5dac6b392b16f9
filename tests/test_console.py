"""What a user sees: quiet start-up, the original output lines, one-line errors.

The command-line runs start from a shell-like environment with a dead proxy
(helpers.run_module), so they never reach the internet.
"""

import os
import re
import subprocess
import sys

import pytest

from common import console
from helpers import ACCURACY_LINE
from helpers import EPOCH_LINE
from helpers import assert_one_error_line
from helpers import run_module

# absl/glog lines TensorFlow writes at start-up, e.g.
# "I0000 00:00:17958.. 6885 cpu_feature_guard.cc:227] This TensorFlow binary..."
TF_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog"
                         r"|[IWEF]\d{4} \d\d:\d\d:\d\d)", re.MULTILINE)
SMOKE_RUN = ("--train_limit", 500, "--training_epochs", 1, "--seed", 1)


@pytest.fixture
def cli(monkeypatch):
  """Runs an entry point as a user would, from the repository root."""
  monkeypatch.delenv(console.VERBOSE_ENV, raising=False)

  def run(module, *args):
    return run_module(module, *args, timeout=300)
  return run


# ---------------------------------------------------------------- in process


def test_output_lines_keep_the_original_format():
  assert console.epoch_line(1, 15.0826017941) == "Epoch: 0001 cost = 15.082601794"
  assert console.epoch_line(15, 0.5) == "Epoch: 0015 cost = 0.500000000"
  assert console.accuracy_line(0.9483) == "Accuracy: 0.9483"


@pytest.mark.parametrize("value, verbose", [
    (None, False), ("", False), ("0", False), ("1", True), ("yes", True)])
def test_verbose_environment_variable(monkeypatch, value, verbose):
  if value is None:
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
  else:
    monkeypatch.setenv(console.VERBOSE_ENV, value)
  assert console.verbose_from_env() is verbose


def test_stderr_is_silenced_only_inside_and_restored_after_errors(capfd):
  os.write(2, b"before\n")
  with console._stderr_silenced():  # pylint: disable=protected-access
    os.write(2, b"hidden\n")
  with pytest.raises(RuntimeError):
    with console._stderr_silenced():  # pylint: disable=protected-access
      os.write(2, b"hidden too\n")
      raise RuntimeError
  os.write(2, b"after\n")
  assert capfd.readouterr().err == "before\nafter\n"


def test_import_leaves_tensorflows_objects_frozen_and_collection_on():
  # A fresh interpreter: this one has TensorFlow imported already.
  code = ("import gc; from common import console; console.import_tensorflow(); "
          "print(gc.isenabled(), gc.get_freeze_count(), len(gc.get_objects()))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True, timeout=120).stdout.split()
  enabled, frozen, tracked = out[0], int(out[1]), int(out[2])
  assert enabled == "True"
  # What Python's collections (the last one at exit too) still traverse.
  assert frozen > 100_000 and tracked < frozen / 10, (frozen, tracked)


# ---------------------------------------------------------------- default runs


def test_legacy_default_run_prints_only_its_lines(cli, data_dir):
  result = cli("legacy.hw04", "--data_dir", data_dir, *SMOKE_RUN)
  assert result.returncode == 0, result.stderr
  assert result.stderr == ""
  epoch, accuracy = result.stdout.splitlines()
  assert EPOCH_LINE.fullmatch(epoch) and epoch.startswith("Epoch: 0001 ")
  assert ACCURACY_LINE.fullmatch(accuracy)


def test_modern_default_run_prints_nothing_on_stderr(cli, data_dir):
  result = cli("modern.hw04", "--data_dir", data_dir, *SMOKE_RUN)
  assert result.returncode == 0, result.stderr
  assert result.stderr == ""
  lines = result.stdout.splitlines()
  # Keras' own epoch line comes too; the summary lines are legacy's.
  summary = [line for line in lines if line.startswith("Epoch: ")]
  assert len(summary) == 1 and EPOCH_LINE.fullmatch(summary[0])
  assert summary[0].startswith("Epoch: 0001 ")
  assert ACCURACY_LINE.fullmatch(lines[-1])


def test_verbose_shows_tensorflow_start_up_and_errors_still_show(
    cli, data_dir, tmp_path):
  # Another port's --checkpoint_dir: its error comes after TensorFlow's
  # start-up (a damaged data file is found before the import).
  directory = tmp_path / "d"
  directory.mkdir()
  (directory / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
  (directory / "hparams.json").write_text(
      '{"port": "modern", "hparams": {}, "seed": 1}')
  result = cli("legacy.hw04", "--verbose", "--data_dir", data_dir,
               "--checkpoint_dir", directory, "--train_limit", 100,
               "--training_epochs", 1)
  assert result.returncode == 2, result.stderr
  assert result.stdout == ""
  assert TF_LOG_LINE.search(result.stderr), result.stderr
  assert "Traceback" not in result.stderr
  errors = [line for line in result.stderr.splitlines()
            if line.startswith("error: ")]
  assert errors == [result.stderr.splitlines()[-1]]
  assert errors[0].startswith(f"error: --checkpoint_dir {directory} holds a "
                              "run of the modern port, not legacy")


# ---------------------------------------------------------------- bad flags


@pytest.mark.parametrize("module, args, names", [
    ("legacy.hw04", ("--keep_prob", "1.5"), ("--keep_prob", "(0, 1]")),
    ("modern.hw05", ("--hidden_units", "256,,x"),
     ("--hidden_units", "positive integers")),
    ("legacy.hw05", ("--init", "foo"), ("--init", "foo")),
    ("modern.hw04", ("--batch_size", "0"), ("--batch_size", "between 1 and")),
    ("legacy.hw04", ("--no_such_flag",), ("no_such_flag",)),
    ("modern.hw04", ("--seed", "3", "extra"), ("extra",)),
])
def test_bad_flags_give_one_line_and_status_2(cli, module, args, names):
  assert_one_error_line(cli(module, *args), *names, status=2)


def test_thread_environment_sizes_only_the_intra_op_pool():
  # The inter-op pool (independent ops, tf.data) keeps TensorFlow's size.
  assert console.thread_environment(1) == {"TF_NUM_INTRAOP_THREADS": "1"}
  assert console.thread_environment(4) == {"TF_NUM_INTRAOP_THREADS": "4"}
  assert console.thread_environment(0) == {}  # TensorFlow's own choice
