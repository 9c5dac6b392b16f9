"""Runs TensorFlow's own `tf_upgrade_v2` on the original scripts, then the
changes a user must still make by hand, and (with --run) the results.

  python -m migration.upgrade [--out_dir upgraded] [--run]

writes, in --out_dir (generated, never committed):
  tf_upgrade_v2/DL_HW_0Nweek.py  the tool's output, as it wrote it
  report.txt                     the tool's report
  DL_HW_0Nweek.py                the same after HAND_EDITS: runs on TF 2.21

The scripts in original/ are reconstructions in the TF 1.x API
(docs/original-scripts.md); MIGRATION.md's "tf_upgrade_v2" section says what
the tool changes and what it leaves to the user.
"""

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Sequence

from absl import flags

from common import cli
from common import errors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORIGINAL_DIR = os.path.join(REPO, "original")
SCRIPTS = ("DL_HW_04week.py", "DL_HW_05week.py")
TOOL_DIR = "tf_upgrade_v2"
REPORT = "report.txt"
# tf_upgrade_v2 is an entry point of the tensorflow wheel; this is its module.
TOOL = "tensorflow.tools.compatibility.tf_upgrade_v2_main"
# Each report line is "LINE:COL: LEVEL: message"; the tool's levels.
REPORT_LINE = re.compile(r"^\d+:\d+: (INFO|WARNING|ERROR): ", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Edit:
  """Replace `old` (which must occur exactly once) by `new`, because `why`."""
  old: str
  new: str
  why: str


# What tf_upgrade_v2 leaves to the user: without these the upgraded scripts
# stop at their first TensorFlow line.
HAND_EDITS = (
    Edit("import tensorflow as tf\n",
         "import tensorflow as tf\n"
         "tf.compat.v1.disable_eager_execution()\n",
         "TF2 runs eagerly; placeholders and Session need graph mode, and the "
         "tool does not add the call (it must come before the first op, and "
         "before any set_random_seed, which eager mode keeps elsewhere)"),
    Edit("from tensorflow.examples.tutorials.mnist import input_data\n",
         "from common import input_data\n",
         "tensorflow.examples (the tutorials' MNIST loader) is not in the "
         "TF2 wheel; the project's loader has the same read_data_sets"),
    Edit('input_data.read_data_sets("MNIST_data/", one_hot=True)',
         "input_data.read_data_sets(input_data.resolve_data_dir(), one_hot=True)",
         "the project's loader reads $MNIST_DATA_DIR when it is set, as "
         "the project's commands do, else MNIST_data/ as before"),
)


def apply_edits(source: str, edits: Sequence[Edit], name: str) -> str:
  """`source` with every edit made; an edit that does not match once fails."""
  for edit in edits:
    count = source.count(edit.old)
    if count != 1:
      raise errors.UserError(
          f"{name}: expected {edit.old.strip()!r} once, found it {count} "
          "times; was original/ changed? update migration/upgrade.py's edits")
    source = source.replace(edit.old, edit.new)
  return source


def run_tool(out_dir: str) -> str:
  """Runs tf_upgrade_v2 on original/ into out_dir/tf_upgrade_v2; its report."""
  report = os.path.join(out_dir, REPORT)
  command = [sys.executable, "-m", TOOL, "--intree", ORIGINAL_DIR,
             "--outtree", os.path.join(out_dir, TOOL_DIR),
             "--reportfile", report]
  done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                        check=False)
  if done.returncode != 0:
    raise errors.UserError(f"tf_upgrade_v2 failed: {errors.first_line(done.stderr)}")
  with open(report, encoding="utf-8") as f:
    text = f.read()
  flagged = [line for line in text.splitlines() if ": ERROR: " in line]
  if flagged:
    raise errors.UserError(f"tf_upgrade_v2 reports an error: {flagged[0]}")
  return text


def check_out_dir(out_dir: str) -> bool:
  """A validator: refuses an --out_dir this command must not replace."""
  if os.path.exists(out_dir) and not os.path.isfile(os.path.join(out_dir, REPORT)):
    raise flags.ValidationError("it exists and holds no earlier upgrade; "
                                "name a new directory")
  parent = os.path.dirname(os.path.abspath(out_dir))
  if not os.path.isdir(parent):
    raise flags.ValidationError(f"{parent} does not exist; create it or "
                                "name another place")
  return True


def upgrade(out_dir: str) -> None:
  """Writes the tool's output, its report and the hand-edited scripts.

  Built in a temporary directory beside out_dir and renamed into place, so
  a failed upgrade leaves the previous one (or nothing) there.
  """
  work = tempfile.mkdtemp(prefix=".upgrade-",
                          dir=os.path.dirname(os.path.abspath(out_dir)))
  try:
    run_tool(work)
    for script in SCRIPTS:
      with open(os.path.join(work, TOOL_DIR, script), encoding="utf-8") as f:
        upgraded = apply_edits(f.read(), HAND_EDITS, script)
      with open(os.path.join(work, script), "w", encoding="utf-8") as f:
        f.write(upgraded)
    _replace_dir(work, out_dir)
  finally:
    shutil.rmtree(work, ignore_errors=True)


def _replace_dir(new: str, out_dir: str) -> None:
  if os.path.exists(out_dir):
    shutil.rmtree(out_dir)  # an earlier upgrade: check_out_dir made sure
  os.rename(new, out_dir)


def script_environment() -> dict:
  """The environment an upgraded script runs in: it imports `common`."""
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(
      p for p in (REPO, env.get("PYTHONPATH")) if p)
  return env


# TensorFlow's C++ start-up log lines ("I0000 00:00:... port.cc:153] ...",
# the CUDA probes): written to stderr before any setting can act.
_CPP_LOG_LINE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:|WARNING: All log messages before absl)")


def run_script(path: str, verbose: bool = False) -> None:
  """Runs one upgraded script as a user would, `python DL_HW_0Nweek.py`,
  passing its output through; TF's C++ start-up lines only if `verbose`."""
  print(f"$ python {os.path.relpath(path)}", flush=True)
  with subprocess.Popen([sys.executable, path], env=script_environment(),
                        stderr=subprocess.PIPE, text=True) as process:
    for line in process.stderr:
      if verbose or not _CPP_LOG_LINE.match(line):
        sys.stderr.write(line)
  if process.returncode != 0:
    raise errors.UserError(f"{path} exited with status {process.returncode}")


def define_flags() -> None:
  flags.DEFINE_string("out_dir", "upgraded", "Where the upgraded scripts go.")
  flags.register_validator("out_dir", check_out_dir)
  flags.DEFINE_bool("run", False, "Then run both upgraded scripts (15 epochs each).")


def main() -> None:
  out_dir = flags.FLAGS.out_dir
  upgrade(out_dir)
  print(f"tf_upgrade_v2 output, its report and the hand-edited scripts: {out_dir}/")
  if flags.FLAGS.run:
    for script in SCRIPTS:
      run_script(os.path.join(out_dir, script), flags.FLAGS.verbose)


if __name__ == "__main__":
  cli.run_command(define_flags, main)
