"""Tests of --checkpoint_dir (issue 7): save at every epoch end, resume exactly.

The promise: a run interrupted at any moment (Ctrl-C, SIGTERM, SIGKILL, even
in the middle of a save) and started again with the same directory and
flags ends with bit-identical weights, optimizer state and printed lines as
a run that was never interrupted. Checked in both ports, in-process (an
interruption raised from print_fn, after an epoch's line and before its
save) and for real (subprocesses killed at moments drawn from a fixed-seed
generator, one of them inside a save through $MNIST_PORT_FAULT).
"""

import concurrent.futures
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from common import checkpoint_dir as checkpoints
from common import errors
from common import hparams as hp
from common import input_data
from legacy import checkpoints as legacy_checkpoints
from legacy import train as legacy_train
from migration.ports import PORTS
from helpers import REPO_ROOT
from helpers import assert_one_error_line
from helpers import closed_port_url
from helpers import fresh_data_sets
from helpers import run_python_without_write_privilege
from helpers import small_data_sets
from helpers import summary_lines

SEED = 5


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def mnist(full_mnist):
  return fresh_data_sets(full_mnist)


def small_hparams(**overrides):
  """hw05 (Adam, dropout on all layers) on a small network, seeded."""
  fields = dict(training_epochs=4, seed=SEED, hidden_units=(32, 16))
  fields.update(overrides)
  return dataclasses.replace(hp.SCRIPTS["hw05"], **fields)


def train_in_process(port, mnist, hparams, stop_after=None, train_size=1000,
                     **kwargs):
  """Runs `port`'s run_training; returns (result or None, printed lines).

  stop_after=N raises KeyboardInterrupt from print_fn at epoch N's line,
  as Ctrl-C would there: after the epoch, before its checkpoint.
  """
  lines = []

  def print_fn(line):
    lines.append(line)
    if stop_after and line.startswith(f"Epoch: {stop_after:04d} "):
      raise KeyboardInterrupt

  # The first `train_size` training images and 1,000 test images.
  data_sets = small_data_sets(mnist, train_size, test_size=1000,
                              seed=hparams.seed)
  try:
    result = PORTS[port].run_training(hparams, data_sets, print_fn=print_fn,
                                      **kwargs)
  except KeyboardInterrupt:
    return None, lines
  return result, lines


_references = {}


def reference_run(port, mnist, hparams):
  """The uninterrupted run without --checkpoint_dir, once per port and hparams."""
  if (port, hparams) not in _references:
    _references[port, hparams] = train_in_process(port, mnist, hparams)
  return _references[port, hparams]


def checkpoint_values(checkpoint_dir):
  """{name: value} of every tensor in the latest checkpoint of the directory."""
  reader = tf.train.load_checkpoint(checkpoint_dir)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def latest_epoch(checkpoint_dir):
  path = checkpoints.latest_checkpoint(checkpoint_dir)
  return int(path.rsplit("-", 1)[1]) if path else 0


def assert_same_values(actual, expected):
  assert sorted(actual) == sorted(expected)
  for name, value in expected.items():
    assert np.array_equal(actual[name], value), name


def snapshot(directory):
  """{relative path: bytes} of every file under `directory`."""
  files = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, directory)] = f.read()
  return files


# ---------------------------------------------------------------- resume in-process


@pytest.mark.parametrize("port", PORTS)
def test_interrupted_run_resumes_to_the_same_bits(port, mnist, tmp_path):
  """Stopped after epoch 3's line (saved: 2), resumed: the uninterrupted run."""
  hparams = small_hparams()
  # Without --checkpoint_dir: checkpointing must not change the run either.
  expected, expected_lines = reference_run(port, mnist, hparams)

  checkpoint_dir = str(tmp_path / "ckpt")
  stopped, first_lines = train_in_process(port, mnist, hparams, stop_after=3,
                                          checkpoint_dir=checkpoint_dir)
  assert stopped is None and len(first_lines) == 3
  assert latest_epoch(checkpoint_dir) == 2  # epoch 3 was never saved
  result, lines = train_in_process(port, mnist, hparams,
                                   checkpoint_dir=checkpoint_dir)

  assert first_lines == expected_lines[:3]
  assert lines == expected_lines[2:]  # epochs 3 and 4 again, and the accuracy
  assert result.epoch_costs == pytest.approx(expected.epoch_costs, rel=0, abs=0)
  assert result.accuracy == expected.accuracy
  assert sorted(result.weights) == sorted(expected.weights)
  for name, value in expected.weights.items():
    assert np.array_equal(result.weights[name], value), name


@pytest.mark.parametrize("port", PORTS)
def test_a_run_can_be_extended_with_more_epochs(port, mnist, tmp_path):
  hparams = small_hparams()
  expected, expected_lines = reference_run(port, mnist, hparams)
  checkpoint_dir = str(tmp_path / "ckpt")
  short = dataclasses.replace(hparams, training_epochs=1)
  train_in_process(port, mnist, short, checkpoint_dir=checkpoint_dir)
  result, lines = train_in_process(port, mnist, hparams,
                                   checkpoint_dir=checkpoint_dir)
  assert lines == expected_lines[1:]
  for name, value in expected.weights.items():
    assert np.array_equal(result.weights[name], value), name


@pytest.mark.parametrize("port", PORTS)
def test_without_seed_a_seed_is_recorded_and_resuming_is_exact(port, mnist,
                                                               tmp_path):
  hparams = small_hparams(seed=None, training_epochs=3)
  first = tmp_path / "first"
  train_in_process(port, mnist, hparams, stop_after=2,
                   checkpoint_dir=str(first))
  with open(first / checkpoints.RECORD_NAME) as f:
    record = json.load(f)
  assert record["port"] == port
  assert record["hparams"]["seed"] is None and isinstance(record["seed"], int)
  # The same checkpoint resumed twice (the data order of an unseeded legacy
  # run cannot be drawn again, but it is in the checkpoint) gives one result.
  second = tmp_path / "second"
  shutil.copytree(first, second)
  results = [train_in_process(port, mnist, hparams, checkpoint_dir=str(d))
             for d in (first, second)]
  assert results[0][1] == results[1][1]
  assert len(results[0][1]) == 3  # epochs 2 and 3, the accuracy
  for name, value in results[0][0].weights.items():
    assert np.array_equal(results[1][0].weights[name], value), name


@pytest.mark.parametrize("port", PORTS)
def test_last_three_checkpoints_are_kept_and_a_finished_run_only_evaluates(
    port, mnist, tmp_path):
  hparams = small_hparams(training_epochs=5, keep_prob=1.0, optimizer="gd",
                          learning_rate=0.5)
  checkpoint_dir = tmp_path / "ckpt"
  result, lines = train_in_process(port, mnist, hparams,
                                   checkpoint_dir=str(checkpoint_dir))
  indexes = sorted(name for name in os.listdir(checkpoint_dir)
                   if name.endswith(".index"))
  prefix = "model.ckpt" if port == "legacy" else "ckpt"
  assert indexes == [f"{prefix}-{n}.index" for n in (3, 4, 5)]
  state = tf.train.get_checkpoint_state(str(checkpoint_dir))
  assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
      f"{prefix}-{n}" for n in (3, 4, 5)]
  before = snapshot(checkpoint_dir)
  again, again_lines = train_in_process(port, mnist, hparams,
                                        checkpoint_dir=str(checkpoint_dir))
  assert again_lines == lines[-1:]  # nothing left to train: the accuracy only
  assert again.epoch_costs == pytest.approx(result.epoch_costs, rel=0, abs=0)
  assert snapshot(checkpoint_dir) == before


def test_legacy_checkpoint_keeps_tf1_variable_names(mnist, tmp_path):
  """The names another tool reads with tf.train.load_checkpoint."""
  checkpoint_dir = str(tmp_path / "ckpt")
  train_in_process("legacy", mnist, small_hparams(training_epochs=1),
                   checkpoint_dir=checkpoint_dir)
  names = set(tf.train.load_checkpoint(checkpoint_dir).get_variable_to_shape_map())
  for layer in hp.layer_names(2):
    for variable in ("weights", "biases"):
      assert f"{layer}/{variable}" in names
      assert f"{layer}/{variable}/Adam" in names  # Adam's slots too
  assert {"beta1_power", "beta2_power", "global_step", "training_state"} <= names


def test_legacy_dropout_replay_draws_what_the_steps_drew():
  """replay_dropout's chunks leave each random op where single steps would."""
  hparams = small_hparams(hidden_units=(256, 128, 256),
                          dropout_layers="input_hidden")
  batch_size, steps = 100, 100  # 784 wide: 13 steps a chunk, 8 chunks
  rng = np.random.default_rng(0)
  images = rng.random((batch_size, hp.IMAGE_PIXELS), dtype=np.float32)
  labels = np.eye(hp.NUM_CLASSES, dtype=np.float32)[rng.integers(0, 10, batch_size)]

  def masks_after(advance):
    model = legacy_train.build_model(hparams)
    noise = [op.outputs[0] for op in model.graph.get_operations()
             if op.type == "RandomUniform" and "dropout" in op.name.split("/")]
    assert len(noise) == 4
    with tf.compat.v1.Session(graph=model.graph) as sess:
      sess.run(model.init_op)
      feed = legacy_train.fill_feed_dict(model, images, labels, 0.7)
      advance(sess, model, feed, noise)
      return sess.run(noise, feed_dict=feed)

  def by_steps(sess, model, feed, noise):  # as training draws them
    for _ in range(steps):
      sess.run(noise, feed_dict=feed)

  def by_replay(sess, model, feed, noise):
    legacy_checkpoints.replay_dropout(sess, model.graph, steps, batch_size)

  expected = masks_after(by_steps)
  replayed = masks_after(by_replay)
  fresh = masks_after(lambda *_: None)
  for want, got, first in zip(expected, replayed, fresh):
    assert np.array_equal(got, want)
    assert not np.array_equal(first, want)  # the streams did move


# ---------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def saved_runs(mnist, tmp_path_factory):
  """A 2-epoch checkpoint directory of each port, to copy and spoil."""
  runs = {}
  for port in PORTS:
    directory = tmp_path_factory.mktemp(f"saved_{port}") / "ckpt"
    train_in_process(port, mnist, small_hparams(training_epochs=2),
                     checkpoint_dir=str(directory))
    runs[port] = directory
  return runs


def spoiled_copy(saved_runs, port, tmp_path, spoil=None):
  directory = tmp_path / "ckpt"
  shutil.copytree(saved_runs[port], directory)
  if spoil:
    spoil(directory, "model.ckpt-2" if port == "legacy" else "ckpt-2")
  return directory


def _truncate_data(directory, latest):
  path = directory / f"{latest}.data-00000-of-00001"
  path.write_bytes(path.read_bytes()[:1000])


def _flip_data_byte(directory, latest):
  path = directory / f"{latest}.data-00000-of-00001"
  data = bytearray(path.read_bytes())
  data[200] ^= 0xFF
  path.write_bytes(bytes(data))


def _garble_index(directory, latest):
  (directory / f"{latest}.index").write_bytes(b"not a checkpoint index" * 10)


def _remove_index(directory, latest):
  (directory / f"{latest}.index").unlink()


def _garble_pointer(directory, latest):
  (directory / "checkpoint").write_text("{{ not a checkpoint state")


def _garble_record(directory, latest):
  (directory / checkpoints.RECORD_NAME).write_text('{"port": ')


def _remove_record(directory, latest):
  (directory / checkpoints.RECORD_NAME).unlink()


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize("spoil, fragment", [
    (_truncate_data, "cannot be restored"),
    (_flip_data_byte, "cannot be restored"),
    (_garble_index, "cannot be restored"),
    (_remove_index, "cannot be restored"),
    (_garble_pointer, "its file 'checkpoint' cannot be read"),
    (_garble_record, f"{checkpoints.RECORD_NAME} is damaged"),
    (_remove_record, f"a checkpoint but no {checkpoints.RECORD_NAME}"),
])
def test_damaged_checkpoint_is_refused_and_left_alone(port, spoil, fragment,
                                                      saved_runs, mnist, tmp_path):
  directory = spoiled_copy(saved_runs, port, tmp_path, spoil)
  before = snapshot(directory)
  with pytest.raises(errors.UserError) as raised:
    train_in_process(port, mnist, small_hparams(), checkpoint_dir=str(directory))
  message = str(raised.value)
  assert fragment in message
  assert str(directory) in message
  assert "\n" not in message
  assert snapshot(directory) == before


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize("overrides, fragment", [
    (dict(hidden_units=(64,)), "holds a run with hidden_units 32,16, not 64;"),
    (dict(optimizer="gd", learning_rate=0.5),
     "holds a run with optimizer adam, not gd, and learning_rate 0.9, not 0.5;"),
    (dict(seed=SEED + 1), f"holds a run with seed {SEED}, not {SEED + 1};"),
    (dict(keep_prob=1.0), "holds a run with keep_prob 0.7, not 1.0;"),
    (dict(training_epochs=1),
     "holds 2 completed epochs, more than --training_epochs 1;"),
])
def test_other_flags_are_refused_by_name(port, overrides, fragment, saved_runs,
                                         mnist, tmp_path):
  directory = spoiled_copy(saved_runs, port, tmp_path)
  before = snapshot(directory)
  with pytest.raises(errors.UserError) as raised:
    train_in_process(port, mnist, small_hparams(**overrides),
                     checkpoint_dir=str(directory))
  assert fragment in str(raised.value)
  assert snapshot(directory) == before


def test_a_directory_with_nothing_saved_yet_takes_the_new_flags(tmp_path):
  """A run stopped before its first save left only its record: nothing to
  resume, so other flags (another port, another seed) start afresh."""
  directory = str(tmp_path / "ckpt")
  assert checkpoints.prepare_directory(directory, "legacy", small_hparams()) == SEED
  other = small_hparams(hidden_units=(8,), seed=None)
  seed = checkpoints.prepare_directory(directory, "modern", other)
  with open(os.path.join(directory, checkpoints.RECORD_NAME)) as f:
    record = json.load(f)
  assert record["port"] == "modern" and record["seed"] == seed
  assert record["hparams"]["hidden_units"] == [8]
  assert record["hparams"]["seed"] is None
  assert sorted(os.listdir(directory)) == [checkpoints.RECORD_NAME]


def test_the_other_ports_directory_is_refused(saved_runs, mnist, tmp_path):
  directory = spoiled_copy(saved_runs, "legacy", tmp_path)
  before = snapshot(directory)
  with pytest.raises(errors.UserError) as raised:
    train_in_process("modern", mnist, small_hparams(), checkpoint_dir=str(directory))
  assert "holds a run of the legacy port, not modern" in str(raised.value)
  assert snapshot(directory) == before


def cli_args(port, checkpoint_dir, *extra):
  return ["-m", f"{port}.hw05", "--train_limit", 1000, "--training_epochs", 2,
          "--seed", SEED, "--hidden_units", "32,16", "--checkpoint_dir",
          checkpoint_dir, *extra]


@pytest.fixture(scope="module")
def cli_refusals(saved_runs, data_dir, tmp_path_factory):
  """Command-line runs refused before training, side by side (TF's import
  takes most of each): other flags, a read-only directory, an unreadable
  record (both with CAP_DAC_OVERRIDE dropped, which root otherwise has)."""
  env = {input_data.DATA_DIR_ENV: data_dir, "http_proxy": closed_port_url(),
         "https_proxy": closed_port_url()}
  dirs = {}
  for name, port in (("other_flags", "modern"), ("read_only", "legacy"),
                     ("unreadable", "modern")):
    dirs[name] = tmp_path_factory.mktemp(name) / "ckpt"
    shutil.copytree(saved_runs[port], dirs[name])
  (dirs["unreadable"] / checkpoints.RECORD_NAME).chmod(0o000)
  dirs["read_only"].chmod(0o555)
  before = {name: snapshot(d) for name, d in dirs.items() if name != "unreadable"}
  jobs = {
      "other_flags": ("modern", dirs["other_flags"], "--optimizer", "gd"),
      "read_only": ("legacy", dirs["read_only"]),
      "unreadable": ("modern", dirs["unreadable"]),
  }
  with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
    futures = {name: pool.submit(run_python_without_write_privilege,
                                 *cli_args(port, directory, *extra), env=env)
               for name, (port, directory, *extra) in jobs.items()}
    runs = {name: future.result() for name, future in futures.items()}
  dirs["read_only"].chmod(0o755)
  (dirs["unreadable"] / checkpoints.RECORD_NAME).chmod(0o644)
  return runs, dirs, before


def test_cli_other_flags_exit_2_with_one_line(cli_refusals):
  runs, dirs, before = cli_refusals
  proc = runs["other_flags"]
  assert_one_error_line(
      proc, f"--checkpoint_dir {dirs['other_flags']} holds a run with optimizer "
      "adam, not gd", "use another directory or the same flags", status=2,
      stdout="")
  assert snapshot(dirs["other_flags"]) == before["other_flags"]


def test_cli_read_only_checkpoint_dir_exits_2_and_writes_nothing(cli_refusals):
  runs, dirs, before = cli_refusals
  assert_one_error_line(runs["read_only"],
                        f"--checkpoint_dir {dirs['read_only']} is not a writable "
                        "directory (Permission denied)", status=2, stdout=None)
  assert snapshot(dirs["read_only"]) == before["read_only"]


def test_cli_unreadable_record_exits_2(cli_refusals):
  runs, dirs, _ = cli_refusals
  assert_one_error_line(runs["unreadable"],
                        f"--checkpoint_dir {dirs['unreadable']}: cannot read "
                        f"{checkpoints.RECORD_NAME} (Permission denied)",
                        status=2, stdout=None)


def test_uninterrupted_delivers_signals_after_the_block():
  # Python's Ctrl-C handler, even where this runs with SIGINT ignored.
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    with pytest.raises(KeyboardInterrupt):
      with checkpoints.uninterrupted():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # handled between bytecodes: it had its chance
        finished_the_block = True
    assert finished_the_block
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
  finally:
    signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------- killed for real

# A short run: 20 steps an epoch, long enough that several epochs pass
# between the kills below.
KILL_RUN = ("--train_limit", 2000, "--training_epochs", 14, "--seed", SEED)
KILL_SEED = 20260101  # the kill plan's generator


def start(port, checkpoint_dir, env, fault=None):
  env = dict(env, **({checkpoints.FAULT_ENV: fault} if fault else {}))
  # A child inherits an ignored SIGINT (a background job): give it Ctrl-C.
  return subprocess.Popen(
      [sys.executable, "-m", f"{port}.hw05", *map(str, KILL_RUN),
       "--checkpoint_dir", str(checkpoint_dir)],
      cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def stop_after(proc, epoch, delay, signum):
  """Sends `signum` `delay` s after `epoch`'s line; returns (rc, lines, stderr)."""
  out = []
  for line in proc.stdout:
    out.append(line)
    if line.startswith(f"Epoch: {epoch:04d} "):
      time.sleep(delay)
      proc.send_signal(signum)
      break
  # Read on through the same buffered file (communicate() would skip what
  # it holds); stderr is one line at most.
  out.append(proc.stdout.read())
  err = proc.stderr.read()
  proc.wait(timeout=300)
  return proc.returncode, summary_lines("".join(out)), err


# How each attempt ends, None: it finishes. Ctrl-C in one port and SIGTERM
# in the other (the same code in common/ stops both), to keep the processes
# (and TensorFlow imports) few.
KILL_PLANS = {"legacy": ("SIGTERM", "kill_in_save", "SIGKILL", None),
              "modern": ("SIGINT", "kill_in_save", "SIGKILL", None)}


def interrupted_chain(port, directory, env):
  """Runs `port` to the end through its plan of interruptions.

  Returns the record of each attempt: (how, rc, printed lines, stderr,
  latest epoch before, latest epoch after, whether the files of the
  checkpoint after `before` are there).
  """
  rng = np.random.default_rng(KILL_SEED)
  attempts = []
  for how in KILL_PLANS[port]:
    before = latest_epoch(directory)
    if how == "kill_in_save":  # in the middle of its first save
      proc = start(port, directory, env, fault=f"kill_in_save:{before + 1}")
      out, err = proc.communicate(timeout=300)
      rc, lines = proc.returncode, summary_lines(out)
    elif how:
      # After the attempt's 2nd to 4th epoch line, up to 0.3 s later: in
      # the next epoch or the one after (an epoch takes 0.1-0.3 s here).
      epoch, delay = before + 1 + int(rng.integers(1, 4)), rng.uniform(0, 0.3)
      proc = start(port, directory, env)
      rc, lines, err = stop_after(proc, epoch, delay, getattr(signal, how))
    else:
      proc = start(port, directory, env)
      out, err = proc.communicate(timeout=300)
      rc, lines = proc.returncode, summary_lines(out)
    prefix = "model.ckpt" if port == "legacy" else "ckpt"
    attempts.append((how, rc, lines, err, before, latest_epoch(directory),
                     os.path.exists(directory / f"{prefix}-{before + 1}.index")))
  return attempts


@pytest.fixture(scope="module")
def kill_runs(data_dir, tmp_path_factory):
  """Per port: an uninterrupted run and the interrupted chain, all at once."""
  env = dict(os.environ, **{input_data.DATA_DIR_ENV: data_dir})
  env.pop(checkpoints.FAULT_ENV, None)
  root = tmp_path_factory.mktemp("killed")

  def reference(port):
    directory = root / f"{port}_reference"
    proc = start(port, directory, env)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert err == ""
    return directory, summary_lines(out)

  with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    references = {port: pool.submit(reference, port) for port in PORTS}
    chains = {port: pool.submit(interrupted_chain, port, root / port, env)
              for port in PORTS}
    return {port: (references[port].result(), chains[port].result(), root / port)
            for port in PORTS}


@pytest.mark.slow
@pytest.mark.parametrize("port", PORTS)
def test_killed_at_any_moment_resumes_to_the_same_bits(port, kill_runs):
  (reference_dir, reference_lines), attempts, directory = kill_runs[port]
  assert len(reference_lines) == 15
  for how, rc, lines, _, before, after, _ in attempts:  # shown by -rP
    print(f"{how}: exit {rc}, {len(lines)} lines, saved epochs {before} -> {after}")
  printed = {}
  for how, rc, lines, err, before, after, next_written in attempts:
    expected_rc = {"SIGKILL": -signal.SIGKILL, "kill_in_save": -signal.SIGKILL,
                   "SIGTERM": 143, "SIGINT": 130, None: 0}[how]
    assert rc == expected_rc, (how, err)
    assert after >= before
    for line in lines:  # an epoch printed twice (killed before its save) agrees
      key = line.split(" cost")[0]
      assert printed.setdefault(key, line) == line
    if how in ("SIGTERM", "SIGINT"):
      # One line; the epochs printed before the last one are all saved.
      assert_one_error_line(
          subprocess.CompletedProcess(how, rc, stdout=None, stderr=err),
          "run the same command again to resume from the last "
          f"epoch saved in --checkpoint_dir {directory}", status=rc, stdout=None)
      assert after >= before + len(lines) - 1
    if how == "kill_in_save":
      # Killed with the epoch's files written, before the pointer moved.
      assert err == ""
      assert after == before
      assert next_written
  assert attempts[-1][3] == ""  # a finishing run says nothing on stderr
  assert sorted(printed.values()) == sorted(reference_lines)
  assert attempts[-1][2][-1] == reference_lines[-1]  # the accuracy
  assert_same_values(checkpoint_values(str(directory)),
                     checkpoint_values(str(reference_dir)))
