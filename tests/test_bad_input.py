"""Bad input and faults the commands meet: one line, the right exit, nothing
half-written, and caught before TensorFlow is imported wherever it can be.

The cases of the second bad-input round (the flags' own tables are in
test_flags.py, the download's in test_download.py). A run that must fail
before the import gets a `tensorflow` package that ends the process if
imported (`no_tensorflow`): such a run passes only if the command never
reached the import. The runs that train are tiny and run side by side.
"""

import concurrent.futures
import functools
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from common import checkpoint_dir
from common import errors
from common import files
from common import hparams as hp
from common import input_data
from common import resources
from experiments import runner
from helpers import ACCURACY_LINE
from helpers import REPO_ROOT
from helpers import assert_one_error_line
from helpers import run_module
from helpers import small_data_sets
from helpers import summary_lines

TINY = ("--train_limit", 100, "--training_epochs", 1, "--seed", 1)


@pytest.fixture(scope="module")
def no_tensorflow(tmp_path_factory):
  """run_module's env= for a run that must fail before TensorFlow is imported:
  `import tensorflow` then ends the process with status 99."""
  root = tmp_path_factory.mktemp("no_tensorflow")
  (root / "tensorflow").mkdir()
  (root / "tensorflow" / "__init__.py").write_text(
      "import sys\nprint('TensorFlow was imported', file=sys.stderr)\nsys.exit(99)\n")
  return {"PYTHONPATH": str(root)}



# ------------------------------------------- 1-6: values that pass and break


@pytest.mark.parametrize("module, args, fragment", [
    ("legacy.hw05", ["--seed", -1], "--seed must be in 0..4294967295"),       # 1
    ("modern.hw05", ["--seed", -1], "--seed must be in 0..4294967295"),       # 1
    ("modern.hw05", ["--seed", 2**32], "--seed must be in 0..4294967295"),    # 2
    ("legacy.hw05", ["--seed", 2**64], "--seed must be in 0..4294967295"),    # 2
    ("legacy.hw04", ["--hidden_units", 10**9], "needs about"),                # 3
    ("modern.hw04", ["--hidden_units", 10**9], "needs about"),                # 3
    ("modern.hw04", ["--training_epochs", 10**20], "--training_epochs must be in 1.."),  # 4
    ("legacy.hw04", ["--init", "uniform:1e39"], "--init must be"),            # 5
    ("modern.hw04", ["--init", "uniform:1e39"], "--init must be"),            # 5
    ("legacy.hw05", ["--epsilon", 1e-300], "--epsilon must be a positive number"),  # 6
    ("modern.hw05", ["--epsilon", 1e-300], "--epsilon must be a positive number"),  # 6
])
def test_a_value_the_run_cannot_use_is_a_bad_flag(no_tensorflow, module, args,
                                                  fragment):
  assert_one_error_line(run_module(module, *TINY[:4], *args, env=no_tensorflow,
                                   timeout=60), fragment)


def test_the_memory_estimate_names_both_sizes():
  line = resources.refuse_model((10**9,), "adam", 100)
  assert "--hidden_units 1000000000 needs about" in line
  assert "TB of memory" in line and "available here" in line
  assert resources.refuse_model(hp.SCRIPTS["hw05"].hidden_units, "adam", 100) is None


def test_available_memory_is_the_smaller_of_meminfo_and_the_cgroup(
    tmp_path, monkeypatch):
  v2 = tmp_path / "v2"
  v2.mkdir()
  (v2 / "memory.max").write_text("1073741824\n")  # 1 GiB limit, 256 MiB used
  (v2 / "memory.current").write_text("268435456\n")
  monkeypatch.setattr(resources, "_CGROUP_V2", str(v2))
  monkeypatch.setattr(resources, "_CGROUP_V1", str(tmp_path / "none"))
  assert resources.available_bytes() == min(3 * 2**28, _meminfo_available())
  (v2 / "memory.max").write_text("max\n")  # no limit: MemAvailable decides
  assert resources.available_bytes() == pytest.approx(_meminfo_available(),
                                                      rel=0.2)
  monkeypatch.setattr(resources, "available_bytes", lambda: 2**30)
  line = resources.refuse_model((100000,), "gd", 100)
  assert "more than the 1.0 GB available here" in line


def _meminfo_available():
  with open("/proc/meminfo") as f:
    return next(int(l.split()[1]) * 1024 for l in f if l.startswith("MemAvailable"))


def test_non_finite_cost_advice_tells_the_truth():
  # The first step's cost is the initial weights': no learning rate yet.
  assert "--init" in str(errors.NonFiniteCostError(1, 1))
  assert "--learning_rate" not in str(errors.NonFiniteCostError(1, 1))
  assert "--learning_rate" in str(errors.NonFiniteCostError(1, 2))
  assert "--learning_rate" in str(errors.NonFiniteCostError(2, 1))


@pytest.mark.parametrize("port_name", ["legacy", "modern"])
def test_weights_that_overflow_float32_blame_the_initializer(port_name, full_mnist):
  from migration.ports import PORTS  # pylint: disable=g-import-not-at-top
  hparams = hp.HParams(init="uniform:1e38", training_epochs=1, seed=1,
                       train_limit=100)
  with pytest.raises(errors.NonFiniteCostError) as raised:
    PORTS[port_name].run_training(hparams, small_data_sets(full_mnist, 100),
                                  print_fn=lambda line: None)
  assert (raised.value.epoch, raised.value.step) == (1, 1)
  assert "--init" in str(raised.value)


# ------------------------------------------------------ 7-13: output paths


@pytest.mark.parametrize("module, args, fragment", [
    ("legacy.hw04", ["--save_path", "/proc/m"], "--save_path /proc/m cannot be written"),  # 7
    ("modern.hw04", ["--save_path", "/proc/m.keras"],
     "--save_path /proc/m.keras cannot be written"),                                # 8
    ("legacy.hw05", ["--checkpoint_dir", "/proc/ck"], "--checkpoint_dir /proc/ck"),
    ("modern.hw05", ["--logdir", "/proc/logs"], "--logdir /proc/logs"),
    ("legacy.hw04", ["--export_dir", "/proc/export"], "--export_dir /proc/export"),
    ("modern.hw04", ["--save_path", "model.h5"], "must end in .keras"),
])
def test_an_unwritable_output_is_refused_before_the_import(no_tensorflow, module,
                                                           args, fragment):
  assert_one_error_line(run_module(module, *TINY, *args, env=no_tensorflow,
                                   timeout=60), fragment)


@pytest.mark.parametrize("module, name", [("modern.hw04", "d.keras"),   # 9
                                          ("legacy.hw04", "d")])        # 10
def test_a_directory_as_save_path_is_refused_in_both_ports(no_tensorflow, tmp_path,
                                                           module, name):
  (tmp_path / name).mkdir()
  assert_one_error_line(
      run_module(module, *TINY, "--save_path", tmp_path / name, env=no_tensorflow,
                 timeout=60), "--save_path must name a file, not a directory")
  assert os.listdir(tmp_path) == [name]


def test_directories_the_checks_created_go_if_the_command_fails(no_tensorflow,
                                                                tmp_path):
  model = tmp_path / "kept" / "model.keras"
  model.parent.mkdir()
  model.write_bytes(b"a model")  # probed beside, never touched
  result = run_module(
      "modern.hw05", *TINY, "--checkpoint_dir", tmp_path / "a" / "b",
      "--logdir", tmp_path / "c" / "d", "--export_dir", tmp_path / "e",
      "--save_path", model, "--data_dir", tmp_path / "no" / "data",
      env=no_tensorflow, timeout=60)
  assert_one_error_line(result, "MNIST files missing")  # no network here
  assert sorted(os.listdir(tmp_path)) == ["kept"]
  assert os.listdir(model.parent) == ["model.keras"]
  assert model.read_bytes() == b"a model"


def test_a_probe_failing_after_others_created_directories_removes_them(tmp_path):
  created = files.writable_directory(str(tmp_path / "x" / "y"), "--logdir")
  assert created == [str(tmp_path / "x"), str(tmp_path / "x" / "y")]
  with pytest.raises(errors.UserError, match="--save_path /proc/m cannot be written"):
    files.writable_file("/proc/m", "--save_path")
  files.remove_directories(created)
  assert os.listdir(tmp_path) == []


# The runs that train: tiny, three at a time.


def _train_then_evaluate(root, env):
  """13 and 10: --checkpoint_dir X --save_path X/final, X not there yet."""
  x = root / "X"
  trained = run_module("legacy.hw04", *TINY, "--checkpoint_dir", x,
                       "--save_path", x / "final", env=env)
  evaluated = run_module("legacy.evaluate", "--checkpoint", x / "final", env=env)
  return trained, evaluated


@pytest.fixture(scope="module")
def training_runs(data_dir, tmp_path_factory):
  root = tmp_path_factory.mktemp("bad_input_runs")
  env = {input_data.DATA_DIR_ENV: data_dir}

  def with_fault(fault, module, *args):
    return run_module(module, *args, env=dict(env, **{files.FAULT_ENV: fault}))

  two_epochs = ("--train_limit", 100, "--training_epochs", 2, "--seed", 1)
  jobs = {
      "save_into_checkpoint_dir": functools.partial(_train_then_evaluate, root, env),
      # 11: the disk fills up during epoch 2's checkpoint.
      **{f"{port}_checkpoint_full": functools.partial(
          with_fault, "enospc:checkpoint:2", f"{port}.hw05", *two_epochs,
          "--checkpoint_dir", root / f"{port}_ck") for port in ("legacy", "modern")},
  }
  with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
    futures = {name: pool.submit(job) for name, job in jobs.items()}
    runs = {name: future.result() for name, future in futures.items()}
  runs["root"] = root
  return runs


def test_save_path_in_the_checkpoint_dir_leaves_its_pointer_alone(training_runs):
  trained, evaluated = training_runs["save_into_checkpoint_dir"]
  assert trained.returncode == 0, trained.stderr
  x = training_runs["root"] / "X"  # created, as --checkpoint_dir is
  state = (x / checkpoint_dir.STATE_FILE).read_text()
  # Relative, the run's own checkpoint only: final is not in it.
  assert state.splitlines() == ['model_checkpoint_path: "model.ckpt-1"',
                                'all_model_checkpoint_paths: "model.ckpt-1"']
  assert (x / "final.index").exists()
  # The prefix given is the prefix legacy.evaluate takes (10).
  assert evaluated.returncode == 0, evaluated.stderr
  assert summary_lines(evaluated.stdout) == summary_lines(trained.stdout)[-1:]
  assert ACCURACY_LINE.match(summary_lines(evaluated.stdout)[0])


@pytest.mark.parametrize("port, prefix", [("legacy", "model.ckpt"), ("modern", "ckpt")])
def test_a_full_disk_in_a_checkpoint_is_one_line_and_keeps_the_last(
    training_runs, port, prefix):
  result = training_runs[f"{port}_checkpoint_full"]
  directory = training_runs["root"] / f"{port}_ck"
  line = assert_one_error_line(result, f"--checkpoint_dir {directory}",
                               "no space left", "free", stdout=None)
  assert "resume" in line
  assert len(summary_lines(result.stdout)) == 2  # both epochs ran, no accuracy
  kept = sorted(os.listdir(directory))
  assert not [name for name in kept if name.startswith(f"{prefix}-2")]  # nothing of 2
  assert f"{prefix}-1.index" in kept and not [n for n in kept if "temp" in n]
  state = (directory / checkpoint_dir.STATE_FILE).read_text()
  assert f'model_checkpoint_path: "{prefix}-1"' in state


def test_a_full_disk_in_legacy_save_path_is_one_line_and_writes_nothing(  # 12
    tmp_path, monkeypatch):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from legacy import checkpoints, train  # pylint: disable=g-import-not-at-top
  model = train.build_model(hp.HParams(hidden_units=(4,), seed=1))
  monkeypatch.setenv(files.FAULT_ENV, "enospc:save_path")
  with tf.compat.v1.Session(graph=model.graph) as sess:
    sess.run(model.init_op)
    with pytest.raises(errors.UserError,
                       match=f"no space left .* --save_path {tmp_path}/model .*free"):
      checkpoints.save_model(sess, model.graph, str(tmp_path / "model"))
  assert os.listdir(tmp_path) == []


def test_a_full_disk_in_modern_save_path_is_one_line_and_writes_nothing(  # 12
    tmp_path, monkeypatch):
  from modern import checkpoints, train  # pylint: disable=g-import-not-at-top
  model = train.build_model(hp.HParams(hidden_units=(4,), seed=1))
  monkeypatch.setenv(files.FAULT_ENV, "enospc:save_path")
  path = tmp_path / "model.keras"
  with pytest.raises(errors.UserError,
                     match=f"no space left .* --save_path {path} .*free"):
    checkpoints.save_model(model, str(path))
  assert os.listdir(tmp_path) == []


def test_a_full_disk_in_an_export_is_one_line(tmp_path, monkeypatch):
  from common import serving  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv(files.FAULT_ENV, "enospc:export")
  target = serving.prepare_export(str(tmp_path / "base"))
  with pytest.raises(errors.UserError, match="no space left .* --export_dir"):
    with serving.export_path(target) as path:
      os.makedirs(path)
  assert os.listdir(tmp_path / "base") == []


# ------------------------------------------------- 14-18: unguarded parsers


@pytest.mark.parametrize("record", [
    {"port": "legacy", "hparams": "x", "seed": 1},                      # 14
    {"port": "legacy", "hparams": {}, "seed": -1},
    {"port": "legacy", "hparams": {}, "seed": 1, "machine": "x"},
    ["port", "legacy"],
])
def test_a_record_of_another_shape_is_damaged(tmp_path, record):
  (tmp_path / checkpoint_dir.STATE_FILE).write_text('model_checkpoint_path: "m"\n')
  (tmp_path / checkpoint_dir.RECORD_NAME).write_text(json.dumps(record))
  with pytest.raises(errors.UserError, match="hparams.json is damaged"):
    checkpoint_dir.prepare_directory(str(tmp_path), "legacy", hp.HParams(seed=1))


def test_a_pointer_file_that_is_not_utf8_is_one_user_error(tmp_path):      # 15
  from legacy import checkpoints  # pylint: disable=g-import-not-at-top
  (tmp_path / checkpoint_dir.STATE_FILE).write_bytes(b'model_checkpoint_path: "m\n\xff')
  with pytest.raises(errors.UserError, match="is not a checkpoint state file"):
    checkpoints.read_mlp_checkpoint(str(tmp_path))  # evaluate's and the migrator's


@pytest.mark.parametrize("line, field", [('{"a": 1}', "key"), ('[1]', "key"),
                                         ('{"key": "k", "port": "legacy"}', "hparams")])
def test_a_runs_file_line_that_is_not_a_record_is_one_line(data_dir, tmp_path,  # 16
                                                          line, field):
  (tmp_path / runner.RUNS_FILE).write_text(line + "\n")
  with pytest.raises(errors.UserError, match=f"line 1 is not a run record .*'{field}'"):
    runner.read_records(str(tmp_path))
  result = run_module("experiments.sweep", "--out", tmp_path, "--seeds", 1,
                      "--ports", "legacy", "--", *TINY[:4],
                      env={input_data.DATA_DIR_ENV: data_dir}, timeout=60)
  assert_one_error_line(result, "runs.jsonl line 1 is not a run record")


@pytest.mark.parametrize("seeds", ["4294967296",      # 17
                                   "1-100000000",     # 18: refused, never built
                                   "-1"])
def test_sweep_seeds_outside_the_ports_range_or_too_many(tmp_path, seeds):
  start = time.monotonic()
  assert not runner.is_seeds_text(seeds)
  assert time.monotonic() - start < 0.5
  result = run_module("experiments.sweep", "--out", tmp_path / "out", "--seeds",
                      seeds, "--ports", "modern", timeout=60)
  assert_one_error_line(result, "--seeds must be seeds like")
  assert runner.seeds_from_text("0,4294967295,7-9") == [0, 4294967295, 7, 8, 9]


# -------------------------------------------- 19-20: signals in the import


def _inside_the_tensorflow_import(proc, timeout=60):
  """Waits until `proc` has loaded TensorFlow's C++ framework: `import
  tensorflow` has begun, and goes on for seconds after."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline and proc.poll() is None:
    try:
      with open(f"/proc/{proc.pid}/maps") as f:
        if "libtensorflow_framework" in f.read():
          return True
    except OSError:
      return False
    time.sleep(0.01)
  return False


@pytest.mark.parametrize("module, args, signum, status, word", [
    ("legacy.hw05", TINY, signal.SIGINT, 130, "interrupted"),             # 19
    ("legacy.evaluate", ("--checkpoint", "nowhere"), signal.SIGINT, 130,
     "interrupted"),                                                       # 19
    ("modern.hw04", TINY, signal.SIGTERM, 143, "terminated"),             # 20
])
def test_a_signal_during_the_import_is_one_line(data_dir, module, args, signum,
                                                status, word):
  env = dict(os.environ, **{input_data.DATA_DIR_ENV: data_dir})
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  # A child inherits an ignored SIGINT (a background job): give it Ctrl-C.
  proc = subprocess.Popen(
      [sys.executable, "-m", module, *map(str, args)], cwd=REPO_ROOT, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
  try:
    assert _inside_the_tensorflow_import(proc), proc.communicate()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
  finally:
    proc.kill()
    proc.wait()
  result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
  assert_one_error_line(result, word, status=status)
