"""TensorFlow's tf_upgrade_v2 on the original scripts (migration/upgrade.py).

The originals do not run on TF 2.21; the tool's output does not either;
after the hand edits it does, and given legacy's seed it prints legacy's
lines digit for digit.

The seeded comparison changes the upgraded scripts by TEST_EDITS only: a
graph seed and the loader's seed (the originals had neither: their runs
differed every time), and, for the fast test, fewer epochs on a slice.
"""

import os
import re
import subprocess
import sys

import pytest

from migration import upgrade
import helpers

ORIGINAL_05 = os.path.join(upgrade.ORIGINAL_DIR, "DL_HW_05week.py")


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory):
  out_dir = tmp_path_factory.mktemp("upgrade") / "upgraded"
  result = helpers.run_module("migration.upgrade", "--out_dir", out_dir)
  assert result.returncode == 0, result.stderr
  return out_dir


def script_command(path):
  """`python path` as the project's commands run: one intra-op thread."""
  env = upgrade.script_environment()
  env["TF_NUM_INTRAOP_THREADS"] = "1"
  return dict(args=[sys.executable, str(path)], env=env, cwd=helpers.REPO_ROOT,
              text=True)


def run_script(path, timeout=300):
  return subprocess.run(**script_command(path), capture_output=True,
                        timeout=timeout)


def test_edit_that_does_not_match_once_is_one_clear_error():
  edit = upgrade.Edit("x = 1\n", "x = 2\n", "why")
  assert upgrade.apply_edits("x = 1\n", [edit], "s.py") == "x = 2\n"
  with pytest.raises(upgrade.errors.UserError, match="found it 2 times"):
    upgrade.apply_edits("x = 1\nx = 1\n", [edit], "s.py")


def run_with_loader_only(source_path, tmp_path):
  """Runs `source_path` with only the loader edits made (no graph mode)."""
  with open(source_path, encoding="utf-8") as f:
    source = upgrade.apply_edits(f.read(), upgrade.HAND_EDITS[1:], "DL_HW_05week.py")
  script = tmp_path / "loader_only.py"
  script.write_text(source)
  return run_script(script)


def test_the_original_does_not_run_on_tf2(tmp_path):
  result = run_script(ORIGINAL_05)
  assert result.returncode != 0
  assert "No module named 'tensorflow.examples'" in result.stderr
  # With a loader that exists, the next stop is TF 1.x's API itself.
  result = run_with_loader_only(ORIGINAL_05, tmp_path)
  assert result.returncode != 0
  assert "module 'tensorflow' has no attribute 'placeholder'" in result.stderr


def test_the_tools_output_needs_graph_mode(upgraded, tmp_path):
  """The tool's output stops at the first placeholder: it does not disable
  eager execution."""
  result = run_with_loader_only(upgraded / upgrade.TOOL_DIR / "DL_HW_05week.py",
                                tmp_path)
  assert result.returncode != 0
  assert "tf.placeholder() is not compatible with eager execution" in result.stderr


def test_report_has_no_errors_and_every_change_is_explained(upgraded):
  with open(upgraded / upgrade.REPORT, encoding="utf-8") as f:
    report = f.read()
  levels = set(upgrade.REPORT_LINE.findall(report))
  assert levels == {"INFO"}, levels  # no WARNING or ERROR for these scripts
  with open(os.path.join(helpers.REPO_ROOT, "MIGRATION.md"), encoding="utf-8") as f:
    migration_md = f.read()
  messages = set(re.findall(r"^\d+:\d+: INFO: (.+)$", report, re.MULTILINE))
  assert len(messages) >= 8
  for message in messages:
    assert message in migration_md, f"MIGRATION.md does not explain: {message}"


def seeded(source, seed, epochs=None, train_limit=None):
  """TEST_EDITS: the upgraded script given legacy's --seed (and a short run)."""
  edits = [
      upgrade.Edit("tf.compat.v1.disable_eager_execution()\n",
                   "tf.compat.v1.disable_eager_execution()\n"
                   f"tf.compat.v1.set_random_seed({seed})\n", "graph seed"),
      upgrade.Edit("one_hot=True)",
                   f"one_hot=True, seed={seed}, train_limit={train_limit})",
                   "batch order"),
  ]
  if epochs is not None:
    edits.append(upgrade.Edit("training_epochs = 15\n",
                              f"training_epochs = {epochs}\n", "short run"))
  return upgrade.apply_edits(source, edits, "test")


def compare_with_legacy(upgraded, tmp_path, script, seed, epochs, train_limit):
  name = f"DL_HW_0{script[-1]}week.py"
  with open(upgraded / name, encoding="utf-8") as f:
    source = seeded(f.read(), seed, epochs, train_limit)
  path = tmp_path / name
  path.write_text(source)
  args = ["--seed", seed]
  if epochs is not None:
    args += ["--training_epochs", epochs]
  if train_limit is not None:
    args += ["--train_limit", train_limit]
  # Side by side: each runs one thread, and the machine has two cores.
  with subprocess.Popen(**script_command(path), stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE) as original:
    legacy = helpers.run_module(f"legacy.{script}", *args)
    stdout, stderr = original.communicate(timeout=600)
  assert legacy.returncode == 0, legacy.stderr
  assert original.returncode == 0, stderr
  expected = helpers.summary_lines(legacy.stdout)
  assert len(expected) == (epochs or 15) + 1
  assert helpers.summary_lines(stdout) == expected


@pytest.mark.parametrize("script", ["hw04", "hw05"])
def test_upgraded_original_prints_legacys_lines(upgraded, tmp_path, script):
  compare_with_legacy(upgraded, tmp_path, script, seed=2, epochs=2,
                      train_limit=2000)


@pytest.mark.slow
@pytest.mark.parametrize("script", ["hw04", "hw05"])
def test_upgraded_original_prints_legacys_lines_full_run(upgraded, tmp_path, script):
  compare_with_legacy(upgraded, tmp_path, script, seed=1, epochs=None,
                      train_limit=None)


def test_out_dir_that_is_not_an_upgrade_is_left_alone(tmp_path):
  mine = tmp_path / "mine"
  mine.mkdir()
  (mine / "notes.txt").write_text("keep me")
  result = helpers.run_module("migration.upgrade", "--out_dir", mine)
  helpers.assert_one_error_line(result, "holds no earlier upgrade")
  assert [p.name for p in mine.iterdir()] == ["notes.txt"]
  assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temp dir left
