"""Tests of the evaluation and migration commands.

  legacy.evaluate            a legacy TF1 checkpoint -> `Accuracy: ...`
  modern.evaluate            a .keras file -> `Accuracy: ...`
  modern.migrate_checkpoint  a legacy TF1 checkpoint -> a .keras file

One small legacy hw05 run and one small modern hw05 run save their models;
the commands then evaluate, migrate and evaluate again, as a user runs them.
The runs use tanh and 64-32-64 hidden units, so that the layer sizes and the
activation must come through, and Adam, so that the checkpoint holds
optimizer slots the migration must leave behind. What the commands print is
checked against the files themselves (tf.train.load_checkpoint, a numpy
forward pass, the test labels); the legacy -> Keras names are written out
below, not taken from migration/names.py.
"""

import concurrent.futures
import functools
import json
import os
import re
import shutil
import threading
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import errors
from common import evaluation
from common import input_data
from legacy import checkpoints as legacy_checkpoints
from legacy import evaluate as legacy_evaluate
from migration import migrate_checkpoint
from migration import names
from modern import checkpoints as modern_checkpoints
from modern import evaluate as modern_evaluate
from helpers import ACCURACY_LINE
from helpers import assert_one_error_line
from helpers import fresh_data_sets
from helpers import run_module
import numpy_reference as nr

v1 = tf.compat.v1

# Small runs that learn something (20 Adam steps from Glorot weights), so
# that accuracies and predictions are not the constant of a collapsed run.
SMALL_RUN = ("--train_limit", 1000, "--training_epochs", 2, "--seed", 3,
             "--hidden_units", "64,32,64", "--activation", "tanh",
             "--learning_rate", 0.01, "--init", "xavier", "--bias_init", "zeros")
PREDICT = (0, 7, 42, 9999)

# The migration's name map, written out independently: the specification.
LEGACY_TO_KERAS = (
    ("hidden1/weights", "hidden1", "kernel"),
    ("hidden1/biases", "hidden1", "bias"),
    ("hidden2/weights", "hidden2", "kernel"),
    ("hidden2/biases", "hidden2", "bias"),
    ("hidden3/weights", "hidden3", "kernel"),
    ("hidden3/biases", "hidden3", "bias"),
    ("softmax_linear/weights", "softmax_linear", "kernel"),
    ("softmax_linear/biases", "softmax_linear", "bias"),
)

PREDICTION_LINE = re.compile(r"^test\[(\d+)\]: predicted (\d), label (\d)$")


def check_clean_success(proc):
  assert proc.returncode == 0, proc.stderr
  assert proc.stderr == ""


def parse_predictions(lines):
  """[(index, predicted, label)] from `test[7]: predicted 9, label 9` lines."""
  matches = [PREDICTION_LINE.match(line) for line in lines]
  assert all(matches), lines
  return [tuple(int(g) for g in m.groups()) for m in matches]


def np_logits(values, images, activation="tanh"):
  """The legacy MLP's logits from its checkpoint values, in float64."""
  names = ("hidden1", "hidden2", "hidden3", "softmax_linear")
  params = [(values[f"{name}/weights"].astype(np.float64),
             values[f"{name}/biases"].astype(np.float64)) for name in names]
  return nr.forward(params, images, activation)[-1]


def write_checkpoint(prefix, variables, state_file=True):
  """A TF1 checkpoint of {name: value}, written by a Saver as legacy's is."""
  os.makedirs(os.path.dirname(str(prefix)), exist_ok=True)
  graph = tf.Graph()
  with graph.as_default():
    for name, value in variables.items():
      tf.Variable(value, name=name)
    saver = v1.train.Saver()
    with v1.Session(graph=graph) as sess:
      sess.run(v1.global_variables_initializer())
      saver.save(sess, str(prefix), write_state=state_file)
  return str(prefix)


def tiny_mlp_variables(hidden_units=(5, 4)):
  """The variables legacy's graph would hold for `hidden_units`, random."""
  rng = np.random.default_rng(0)
  sizes = (784, *hidden_units, 10)
  names = [f"hidden{i}" for i in range(1, len(hidden_units) + 1)] + ["softmax_linear"]
  variables = {}
  for name, fan_in, fan_out in zip(names, sizes[:-1], sizes[1:]):
    variables[f"{name}/weights"] = rng.normal(size=(fan_in, fan_out)).astype(np.float32)
    variables[f"{name}/biases"] = rng.normal(size=fan_out).astype(np.float32)
  return variables


# ---------------------------------------------------------------- the runs


@pytest.fixture(scope="module")
def mnist_test(full_mnist):
  return fresh_data_sets(full_mnist).test


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
  """Every command-line run (each spends seconds importing TensorFlow).

  legacy train (--save_path and --checkpoint_dir) -> legacy.evaluate (the
  checkpoint directory, whose record says tanh) and migrate (the prefix)
  -> modern.evaluate of the migrated file; modern train -> modern.evaluate;
  then runs with bad input.
  """
  root = tmp_path_factory.mktemp("evaluate")
  paths = {name: root / name for name in ("legacy", "migrated", "modern",
                                          "refused", "damaged")}
  run_dir = root / "run"  # --checkpoint_dir: checkpoints and hparams.json
  for path in paths.values():
    path.mkdir()
  prefix = paths["legacy"] / "hw05"
  migrated = paths["migrated"] / "hw05.keras"
  modern_model = paths["modern"] / "hw05.keras"
  damaged = write_checkpoint(paths["damaged"] / "tiny", tiny_mlp_variables())
  data_file = f"{damaged}.data-00000-of-00001"
  os.truncate(data_file, os.path.getsize(data_file) // 2)
  run = functools.partial(run_module, env={input_data.DATA_DIR_ENV: data_dir},
                          timeout=300)
  predict = ("--predict", ",".join(map(str, PREDICT)))

  def legacy_runs():
    try:
      out = {"legacy_train": run("legacy.hw05", *SMALL_RUN, "--save_path", prefix,
                                 "--checkpoint_dir", run_dir)}
    finally:
      trained.set()  # whatever became of it: legacy.evaluate may start
    out["migrate"] = run("modern.migrate_checkpoint", "--checkpoint", prefix,
                         "--activation", "tanh", "--save_path", migrated)
    out["migrated_evaluate"] = run("modern.evaluate", "--model", migrated, *predict)
    # Bad input found after TensorFlow's import: the driver's error path.
    out["damaged_checkpoint"] = run(
        "modern.migrate_checkpoint", "--checkpoint", damaged,
        "--save_path", paths["refused"] / "damaged.keras")
    return out

  def modern_runs():
    out = {"modern_train": run("modern.hw05", *SMALL_RUN,
                               "--save_path", modern_model)}
    out["modern_evaluate"] = run("modern.evaluate", "--model", modern_model, *predict)
    # Bad flags, refused before TensorFlow is imported.
    out["bad_index"] = run("modern.evaluate", "--model", modern_model,
                           "--predict", "7,x")
    out["negative_index"] = run("legacy.evaluate", "--checkpoint", prefix,
                                "--predict=-1")
    out["wrong_suffix"] = run("modern.migrate_checkpoint", "--checkpoint", damaged,
                              "--save_path", paths["refused"] / "model.h5")
    out["surplus_argument"] = run("legacy.evaluate", "--checkpoint", prefix, "now")
    trained.wait()
    # No --activation: the run's hparams.json says tanh.
    out["legacy_evaluate"] = run("legacy.evaluate", "--checkpoint", run_dir, *predict)
    return out

  # Two at a time: four and three imports of TensorFlow.
  trained = threading.Event()
  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    futures = [pool.submit(legacy_runs), pool.submit(modern_runs)]
    results = {k: v for future in futures for k, v in future.result().items()}
  results.update(prefix=str(prefix), run_dir=str(run_dir), migrated=str(migrated),
                 modern_model=str(modern_model), paths=paths)
  return results


# ---------------------------------------------------------------- legacy.evaluate


def test_legacy_evaluate_prints_the_training_runs_accuracy(runs):
  check_clean_success(runs["legacy_train"])
  check_clean_success(runs["legacy_evaluate"])
  trained = runs["legacy_train"].stdout.splitlines()[-1]
  lines = runs["legacy_evaluate"].stdout.splitlines()
  assert ACCURACY_LINE.match(trained), trained
  assert lines[0] == trained  # exactly, not approximately
  assert len(lines) == 1 + len(PREDICT)


def test_legacy_predictions_are_the_checkpoints_argmax(runs, mnist_test):
  reader = tf.train.load_checkpoint(runs["prefix"])
  values = {name: reader.get_tensor(name) for name, _, _ in LEGACY_TO_KERAS}
  logits = np_logits(values, mnist_test.images[list(PREDICT)])
  predictions = parse_predictions(runs["legacy_evaluate"].stdout.splitlines()[1:])
  assert [index for index, _, _ in predictions] == list(PREDICT)
  for (index, predicted, label), row in zip(predictions, logits):
    assert label == mnist_test.labels[index].argmax()
    assert predicted == row.argmax(), (index, row)
  # A run that learnt something: not one digit for every image.
  assert len({predicted for _, predicted, _ in predictions}) > 1


def test_legacy_evaluate_reads_a_directorys_latest_checkpoint(runs, mnist_test):
  by_prefix = legacy_evaluate.evaluate(runs["prefix"], mnist_test, "tanh")
  by_directory = legacy_evaluate.evaluate(runs["run_dir"], mnist_test, "tanh")
  assert by_directory.accuracy == by_prefix.accuracy
  assert np.array_equal(by_directory.predictions, by_prefix.predictions)
  # --save_path writes no state file: its directory names no checkpoint.
  assert not os.path.exists(os.path.join(os.path.dirname(runs["prefix"]),
                                         "checkpoint"))


def test_the_activation_comes_from_the_flag_or_the_runs_record(runs, tmp_path):
  read = legacy_checkpoints.read_mlp_checkpoint
  assert read(runs["run_dir"]).activation == "tanh"  # from hparams.json
  assert read(runs["run_dir"], "tanh").activation == "tanh"
  with pytest.raises(errors.UserError, match="says it used tanh: leave --activation out"):
    read(runs["run_dir"], "sigmoid")
  prefix = write_checkpoint(tmp_path / "model", tiny_mlp_variables())
  assert read(prefix).activation == "sigmoid"  # no record: the scripts' default
  assert read(prefix, "relu").activation == "relu"


# ---------------------------------------------------------------- migration


def test_migrate_writes_one_keras_file_and_says_so(runs):
  proc = runs["migrate"]
  check_clean_success(proc)
  assert proc.stdout.splitlines() == [
      f"Wrote {runs['migrated']}: 784 -> 64 -> 32 -> 64 -> 10, tanh, "
      f"from the legacy checkpoint {runs['prefix']}"]
  assert os.listdir(runs["paths"]["migrated"]) == ["hw05.keras"]  # no temporary


def test_migrated_weights_equal_the_checkpoints_by_name(runs):
  reader = tf.train.load_checkpoint(runs["prefix"])
  model = keras.saving.load_model(runs["migrated"], safe_mode=True)
  assert [layer.name for layer in model.layers] == [
      "hidden1", "hidden2", "hidden3", "softmax_linear"]
  assert len(model.weights) == len(LEGACY_TO_KERAS)
  for legacy_name, layer, attribute in LEGACY_TO_KERAS:
    value = getattr(model.get_layer(layer), attribute).numpy()
    assert np.array_equal(value, reader.get_tensor(legacy_name)), legacy_name
  activations = [layer.activation.__name__ for layer in model.layers]
  assert activations == ["tanh", "tanh", "tanh", "linear"]


def test_migrated_file_needs_only_keras(runs):
  """A plain Sequential of Keras' own layers: no class of this project."""
  with zipfile.ZipFile(runs["migrated"]) as archive:
    config = json.loads(archive.read("config.json"))

  def classes(node):
    if isinstance(node, dict):
      if "class_name" in node:
        yield node.get("module"), node["class_name"], node.get("registered_name")
      for value in node.values():
        yield from classes(value)
    elif isinstance(node, list):
      for value in node:
        yield from classes(value)

  found = set(classes(config))
  assert ("keras", "Sequential", None) in found
  for module, class_name, registered_name in found:
    assert module.split(".")[0] == "keras", (module, class_name)
    assert registered_name is None, class_name


def test_migrated_model_evaluates_to_the_legacy_lines(runs):
  check_clean_success(runs["migrated_evaluate"])
  # The same accuracy line and the same predictions, character for character.
  assert runs["migrated_evaluate"].stdout == runs["legacy_evaluate"].stdout


def test_migrated_predictions_equal_legacy_on_the_whole_test_set(runs, mnist_test):
  legacy = legacy_evaluate.evaluate(runs["prefix"], mnist_test, "tanh")
  migrated = modern_evaluate.evaluate(runs["migrated"], mnist_test)
  assert migrated.accuracy == legacy.accuracy
  assert np.array_equal(migrated.predictions, legacy.predictions)


def test_name_map_is_the_documented_table():
  expected = {legacy: f"{layer}/{attribute}"
              for legacy, layer, attribute in LEGACY_TO_KERAS}
  assert names.name_map((64, 32, 64)) == expected


def test_migrate_overwrites_atomically_and_refuses_an_unwritable_path(tmp_path):
  checkpoint = legacy_checkpoints.read_mlp_checkpoint(
      write_checkpoint(tmp_path / "tiny", tiny_mlp_variables()))
  model = migrate_checkpoint.build_model(checkpoint)
  # A directory where the file should go: the rename fails, nothing is left.
  blocked = tmp_path / "out" / "model.keras"
  blocked.mkdir(parents=True)
  with pytest.raises(errors.UserError, match="cannot write"):
    modern_checkpoints.save_model(model, str(blocked))
  assert os.listdir(tmp_path / "out") == ["model.keras"]
  assert os.listdir(blocked) == []
  with pytest.raises(errors.UserError, match=r"\.keras"):
    modern_checkpoints.save_model(model, str(tmp_path / "out" / "model.h5"))
  assert os.listdir(tmp_path / "out") == ["model.keras"]
  # An existing file is replaced whole.
  target = tmp_path / "model.keras"
  target.write_text("an older model")
  modern_checkpoints.save_model(model, str(target))
  assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.keras", "out",
                                          "tiny.data-00000-of-00001",
                                          "tiny.index", "tiny.meta"]
  assert zipfile.is_zipfile(target)


# ---------------------------------------------------------------- modern.evaluate


def test_modern_evaluate_prints_the_training_runs_accuracy(runs, mnist_test):
  check_clean_success(runs["modern_train"])
  check_clean_success(runs["modern_evaluate"])
  trained = runs["modern_train"].stdout.splitlines()[-1]
  lines = runs["modern_evaluate"].stdout.splitlines()
  assert ACCURACY_LINE.match(trained), trained
  assert lines[0] == trained
  model = keras.saving.load_model(runs["modern_model"], safe_mode=True)
  logits = model.predict(mnist_test.images[list(PREDICT)], verbose=0)
  predictions = parse_predictions(lines[1:])
  assert predictions == [(index, row.argmax(), mnist_test.labels[index].argmax())
                         for index, row in zip(PREDICT, logits)]


# ---------------------------------------------------------------- bad input


def test_bad_input_on_the_command_line_is_one_line_and_exit_2(runs):
  for name, expected in [
      ("damaged_checkpoint", "is damaged"),
      ("bad_index", "--predict must be test-set indices"),
      ("negative_index", "--predict must be test-set indices"),
      ("wrong_suffix", "--save_path must end in .keras"),
      ("surplus_argument", "unexpected arguments"),
  ]:
    assert_one_error_line(runs[name])
    assert expected in runs[name].stderr, (name, runs[name].stderr)
  assert os.listdir(runs["paths"]["refused"]) == []  # nothing half-written


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory):
  """{case: (path, expected words)}: each a way a checkpoint can be wrong."""
  root = tmp_path_factory.mktemp("bad_checkpoints")
  good = write_checkpoint(root / "good" / "model", tiny_mlp_variables())
  cases = {"missing": (str(root / "missing"), "no checkpoint at")}
  (root / "no_state").mkdir()
  cases["directory without state file"] = (str(root / "no_state"),
                                           "without a `checkpoint` state file")
  (root / "stale").mkdir()
  (root / "stale" / "checkpoint").write_text('model_checkpoint_path: "gone"\n')
  cases["state file naming a missing checkpoint"] = (
      str(root / "stale"), "gone.index does not exist")
  (root / "garbled").mkdir()
  (root / "garbled" / "checkpoint").write_text('model_checkpoint_path: "x\n')
  cases["garbled state file"] = (str(root / "garbled"), "not a checkpoint state file")
  cases["a file, not the prefix"] = (good + ".index", f"give its prefix, {good}")
  (root / "model.keras").write_bytes(b"PK")
  cases["a .keras file"] = (str(root / "model.keras"), "a Keras model file")
  for name, keep in (("index", 0.5), ("data", 0.5)):
    shutil.copytree(root / "good", root / f"truncated_{name}")
    path = str(root / f"truncated_{name}" / "model")
    path += ".index" if name == "index" else ".data-00000-of-00001"
    os.truncate(path, int(os.path.getsize(path) * keep))
  cases["truncated index"] = (str(root / "truncated_index" / "model"),
                              "not a readable TF checkpoint")
  cases["truncated data"] = (str(root / "truncated_data" / "model"), "is damaged")
  foreign = tf.train.Checkpoint(v=tf.Variable(np.zeros(3, np.float32)))
  cases["a TF2 checkpoint of something else"] = (
      foreign.write(str(root / "foreign" / "ckpt")), "no variable hidden1/weights")
  variables = tiny_mlp_variables()
  del variables["softmax_linear/biases"]
  cases["a layer short"] = (write_checkpoint(root / "short" / "model", variables),
                            "no variable softmax_linear/biases")
  variables = tiny_mlp_variables()
  variables["hidden2/weights"] = variables["hidden2/weights"][:3]
  cases["layers that do not chain"] = (
      write_checkpoint(root / "unchained" / "model", variables),
      "hidden2/weights has shape [3, 4], not [5, units]")
  variables = tiny_mlp_variables()
  variables["softmax_linear/weights"] = np.zeros((4, 9), np.float32)
  variables["softmax_linear/biases"] = np.zeros(9, np.float32)
  cases["nine classes"] = (write_checkpoint(root / "nine" / "model", variables),
                           "not [4, 10]")
  variables = tiny_mlp_variables()
  variables["hidden1/biases"] = variables["hidden1/biases"].astype(np.float64)
  cases["float64"] = (write_checkpoint(root / "float64" / "model", variables),
                      "hidden1/biases is float64")
  # A --checkpoint_dir run's record (common/checkpoints.py) gone wrong.
  for name, record, expected in (
      ("damaged record", "{", "hparams.json, the record of the run, is damaged"),
      ("record of a modern run",
       json.dumps({"port": "modern", "hparams": {"activation": "tanh"}}),
       "records a run of the modern port")):
    write_checkpoint(root / name / "model", tiny_mlp_variables())
    (root / name / "hparams.json").write_text(record)
    cases[name] = (str(root / name), expected)
  return cases


@pytest.mark.parametrize("case", [
    "missing", "directory without state file",
    "state file naming a missing checkpoint", "garbled state file",
    "a file, not the prefix", "a .keras file", "truncated index",
    "truncated data", "a TF2 checkpoint of something else", "a layer short",
    "layers that do not chain", "nine classes", "float64", "damaged record",
    "record of a modern run"])
def test_a_bad_checkpoint_is_one_user_error_in_both_readers(
    case, bad_checkpoints, mnist_test):
  path, expected = bad_checkpoints[case]
  for read in (lambda: legacy_evaluate.evaluate(path, mnist_test),
               lambda: migrate_checkpoint.build_model(
                   legacy_checkpoints.read_mlp_checkpoint(path))):
    with pytest.raises(errors.UserError) as raised:
      read()
    message = str(raised.value)
    assert expected in message, message
    assert "\n" not in message


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory, runs):
  root = tmp_path_factory.mktemp("bad_models")
  good = runs["modern_model"]
  cases = {"missing": (str(root / "missing.keras"), "no model file at")}
  with open(good, "rb") as f:
    (root / "truncated.keras").write_bytes(f.read()[:5000])
  cases["truncated"] = (str(root / "truncated.keras"), "not a zip archive")
  with zipfile.ZipFile(good) as source, \
       zipfile.ZipFile(root / "garbled.keras", "w") as target:
    for name in source.namelist():
      target.writestr(name, b"{not json" if name == "config.json"
                      else source.read(name))
  cases["garbled config"] = (str(root / "garbled.keras"), "not a loadable Keras model")
  other = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(3)])
  other.save(root / "three_classes.keras")
  cases["not MNIST's shape"] = (str(root / "three_classes.keras"),
                                "(None, 3), not MNIST's")
  return cases


@pytest.mark.parametrize("case", ["missing", "truncated", "garbled config",
                                  "not MNIST's shape"])
def test_a_bad_keras_file_is_one_user_error(case, bad_models, mnist_test):
  path, expected = bad_models[case]
  with pytest.raises(errors.UserError) as raised:
    modern_evaluate.evaluate(path, mnist_test)
  assert expected in str(raised.value), str(raised.value)
  assert "\n" not in str(raised.value)


def test_an_index_past_the_test_set_is_a_user_error(mnist_test):
  assert evaluation.predict_indices(["0", "9999", "7"], mnist_test) == [0, 9999, 7]
  assert evaluation.predict_indices(None, mnist_test) == []
  with pytest.raises(errors.UserError, match=r"--predict index 10000 is out of "
                     r"range: the test set has 10000 images, 0\.\.9999"):
    evaluation.predict_indices(["7", "10000"], mnist_test)


def test_prediction_line_format():
  assert evaluation.prediction_line(7, 9, 4) == "test[7]: predicted 9, label 4"
  assert PREDICTION_LINE.match(evaluation.prediction_line(9999, 0, 0))
