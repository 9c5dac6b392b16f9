"""Serving: both ports export one SavedModel signature (common/serving.py),
and every export loads and predicts in plain TensorFlow as the port does.

  --export_dir on the training commands writes BASE/N, counting up, and
    refuses an existing BASE/N before training;
  an export, loaded by a fresh Python that imports nothing of this project,
    gives the training run's accuracy, and `classes` equal the port's own
    predictions (its evaluate code on its --save_path) on all 10,000 images;
  saved_model_cli shows the same signature for both ports;
  docs/serving.md's snippet loads each export with tf.saved_model.load and as a
    keras.layers.TFSMLayer;
  serving.predict prints the evaluate commands' lines, and bad input is one
    line and exit 2;
  --request answers TF Serving REST requests to real exports as the server
    does (the JSON rules themselves: test_json_tensor.py);
  --to_tflite converts both ports' exports, whose TFLite models give the
    SavedModel's classes, and --tflite reports their accuracy.
"""

import concurrent.futures
import functools
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from common import console
from common import input_data
from common import serving
from common.errors import UserError
from serving import json_tensor
from serving import predict as serving_predict
from serving import rest
from serving import tflite as serving_tflite
from helpers import ACCURACY_LINE, assert_one_error_line, run_module, summary_lines
from helpers import REPO_ROOT
from helpers import fresh_data_sets
from helpers import run_python_without_write_privilege

# A run that learns something in a second (10 steps), with dropout in
# training: the served graph has to leave it out.
SMALL_RUN = ("--training_epochs", "1", "--train_limit", "1000", "--seed", "3",
             "--learning_rate", "0.1", "--keep_prob", "0.9")
PREDICT = (0, 7, 42)
ROW_REQUEST = 3  # test images in the REST request sent on the command line
# The in-process REST requests' sizes (rows, columns). A matmul's rounding may
# depend on the batch's size (AMD EPYC family 25: 1 float32 ulp between rows
# 0-4 of a batch of 5 and of 10,000), so each answer is held bit for bit to
# plain TensorFlow's on a batch of that same size.
REQUEST_SIZES = (5, 4)

# Plain TensorFlow, run from an empty directory: loads each export, writes
# its outputs on the test images, prints the accuracy from `classes` as the
# commands print it, and proves it imported nothing of this project.
FRESH_LOAD = """
import sys
import numpy as np
import tensorflow as tf
data = np.load(sys.argv[1])
images, labels = data["images"], data["labels"]
for path, out in zip(sys.argv[3::2], sys.argv[4::2]):
  serve = tf.saved_model.load(path).signatures["serving_default"]
  result = serve(images=tf.constant(images))
  classes = result["classes"].numpy()
  heads = {f"probabilities_{n}": serve(images=tf.constant(images[:n]))["probabilities"]
           for n in map(int, sys.argv[2].split(","))}
  np.savez(out, classes=classes, probabilities=result["probabilities"].numpy(),
           **{name: value.numpy() for name, value in heads.items()})
  accuracy = np.float32((classes == labels).sum()) / np.float32(len(labels))
  print("Accuracy: " + str(accuracy))
project = {"common", "legacy", "modern", "migration", "serving", "experiments"}
assert not project & {name.split(".")[0] for name in sys.modules}
"""


@pytest.fixture(scope="module")
def mnist_test(full_mnist):
  return fresh_data_sets(full_mnist).test


def saved_model_cli(path):
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  return subprocess.run([cli, "show", "--dir", str(path), "--tag_set", "serve",
                         "--signature_def", "serving_default"],
                        capture_output=True, text=True, timeout=120)


def write_bad_saved_models(root):
  """A SavedModel without serving_default, one taking [None, 28, 28]."""
  module = tf.Module()
  module.v = tf.Variable(1.0)
  other = tf.function(lambda images: {"classes": tf.argmax(images, 1)},
                      input_signature=[tf.TensorSpec([None, 784], tf.float32)])
  tf.saved_model.save(module, str(root / "unnamed"), signatures={"other": other})
  square = tf.function(lambda images: {"classes": tf.argmax(images, 1)},
                       input_signature=[tf.TensorSpec([None, 28, 28], tf.float32)])
  tf.saved_model.save(module, str(root / "square"),
                      signatures={"serving_default": square})
  (root / "empty").mkdir()
  (root / "corrupt").mkdir()
  (root / "corrupt" / "saved_model.pb").write_bytes(b"not a protocol buffer")
  (root / "read_only").mkdir(mode=0o555)
  text = tf.function(lambda text: {"length": tf.strings.length(text)},
                     input_signature=[tf.TensorSpec([None], tf.string)])
  tf.saved_model.save(module, str(root / "text"),
                      signatures={"serving_default": text})


def rest_request(images, **fields):
  """A REST predict request's bytes: `images` as row-format instances."""
  return json.dumps({**fields, "instances": images.tolist()}).encode()


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory, mnist_test):
  """The command-line runs, two at a time (each imports TensorFlow)."""
  root = tmp_path_factory.mktemp("serving")
  write_bad_saved_models(root)
  np.savez(root / "test.npz", images=mnist_test.images,
           labels=mnist_test.labels.argmax(axis=1))
  (root / "too_short.json").write_bytes(rest_request(mnist_test.images[:2, :783]))
  row_request = rest_request(mnist_test.images[:ROW_REQUEST]).decode()
  run = functools.partial(run_module, env={input_data.DATA_DIR_ENV: data_dir},
                          timeout=300)
  predict = ("--predict", ",".join(map(str, PREDICT)))

  def legacy_runs():
    base = root / "legacy"
    out = {"legacy": run("legacy.hw04", *SMALL_RUN, "--save_path", root / "hw04",
                         "--export_dir", base)}
    out["legacy_again"] = run("legacy.hw04", "--train_limit", "100",
                              "--training_epochs", "1", "--export_dir", base)
    out["migrate"] = run("modern.migrate_checkpoint", "--checkpoint",
                         root / "hw04", "--export_dir", root / "migrated")
    out["refused"] = run("legacy.hw04", "--export_dir", base,
                         "--export_version", "1")
    out["legacy_cli"] = saved_model_cli(base / "1")
    out["not_a_saved_model"] = run("serving.predict", "--saved_model", root / "empty")
    out["read_only"] = run_python_without_write_privilege(
        "-m", "legacy.hw04", "--export_dir", root / "read_only",
        env={input_data.DATA_DIR_ENV: data_dir})
    # Refused by the flag parser, before TensorFlow is imported.
    out["version_0"] = run("modern.hw05", "--export_dir", root / "unused",
                           "--export_version", "0")
    out["version_alone"] = run("legacy.hw05", "--export_version", "2")
    out["migrate_nowhere"] = run("modern.migrate_checkpoint", "--checkpoint",
                                 root / "hw04")
    # The same weights, through both ports' exports, to TFLite.
    for name, export in (("legacy", base / "1"), ("migrated", root / "migrated")):
      out[f"{name}_tflite"] = run("serving.predict", "--saved_model", export,
                                  "--to_tflite", root / f"{name}.tflite")
    out["tflite_predict"] = run("serving.predict", "--tflite",
                                root / "migrated.tflite", *predict)
    return out

  def modern_runs():
    base = root / "modern"
    out = {"modern": run("modern.hw04", *SMALL_RUN,
                         "--save_path", root / "hw04.keras", "--export_dir", base)}
    out["modern_cli"] = saved_model_cli(base / "1")
    out["predict"] = run("serving.predict", "--saved_model", base, *predict)
    out["unnamed"] = run("serving.predict", "--saved_model", root / "unnamed")
    out["square"] = run("serving.predict", "--saved_model", root / "square")
    out["corrupt"] = run("serving.predict", "--saved_model", root / "corrupt")
    out["request_row"] = run("serving.predict", "--saved_model", base,
                             "--request", "-", stdin=row_request)
    out["request_rejected"] = run("serving.predict", "--saved_model", base,
                                  "--request", root / "too_short.json")
    # Refused by the flag parser, before TensorFlow is imported.
    out["request_missing"] = run("serving.predict", "--saved_model", base,
                                 "--request", root / "missing.json")
    out["tflite_missing"] = run("serving.predict", "--tflite",
                                root / "missing.tflite")
    out["to_tflite_nowhere"] = run("serving.predict", "--saved_model", base,
                                   "--to_tflite", root / "missing" / "m.tflite")
    return out

  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    futures = [pool.submit(legacy_runs), pool.submit(modern_runs)]
    results = {k: v for future in futures for k, v in future.result().items()}
  results["fresh"] = subprocess.run(
      [sys.executable, "-c", FRESH_LOAD, str(root / "test.npz"),
       ",".join(map(str, REQUEST_SIZES)),
       str(root / "legacy" / "1"), str(root / "legacy.npz"),
       str(root / "modern" / "1"), str(root / "modern.npz"),
       str(root / "migrated" / "1"), str(root / "migrated.npz")],
      cwd=root / "empty", capture_output=True, text=True, timeout=300,
      env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
  (root / "read_only").chmod(0o755)
  results["root"] = root
  return results


def trained_accuracy(proc):
  assert proc.returncode == 0, proc.stderr
  lines = summary_lines(proc.stdout)
  assert ACCURACY_LINE.match(lines[-1]), lines
  return lines[-1]


def port_predictions(port, root, test):
  """The port's own predictions: its evaluate code on its --save_path."""
  if port == "legacy":
    from legacy import evaluate  # pylint: disable=g-import-not-at-top
    return evaluate.evaluate(str(root / "hw04"), test).predictions
  from modern import evaluate  # pylint: disable=g-import-not-at-top
  return evaluate.evaluate(str(root / "hw04.keras"), test).predictions


# ---------------------------------------------------------------- the exports


def test_each_export_gives_the_training_accuracy_in_plain_tensorflow(runs):
  fresh = runs["fresh"]
  assert fresh.returncode == 0, fresh.stderr
  legacy = trained_accuracy(runs["legacy"])
  assert fresh.stdout.splitlines() == [legacy, trained_accuracy(runs["modern"]),
                                       legacy]  # the migrated checkpoint's


@pytest.mark.parametrize("port", ["legacy", "modern"])
def test_classes_are_the_ports_own_predictions(port, runs, mnist_test):
  assert runs["fresh"].returncode == 0, runs["fresh"].stderr
  served = np.load(runs["root"] / f"{port}.npz")
  classes, probabilities = served["classes"], served["probabilities"]
  assert classes.dtype == np.int64 and classes.shape == (10_000,)
  np.testing.assert_array_equal(classes,
                                port_predictions(port, runs["root"], mnist_test))
  assert len(set(classes)) > 1  # a model that learnt something
  assert probabilities.dtype == np.float32 and probabilities.shape == (10_000, 10)
  np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_the_migrated_export_serves_the_legacy_model(runs):
  migrate = runs["migrate"]
  assert migrate.returncode == 0, migrate.stderr
  assert migrate.stdout.startswith(f"Exported {runs['root'] / 'migrated' / '1'}: ")
  assert os.listdir(runs["root"] / "migrated") == ["1"]
  legacy = np.load(runs["root"] / "legacy.npz")
  migrated = np.load(runs["root"] / "migrated.npz")
  np.testing.assert_array_equal(migrated["classes"], legacy["classes"])
  np.testing.assert_allclose(migrated["probabilities"], legacy["probabilities"],
                             rtol=1e-5, atol=1e-7)  # float32 rounding
  assert_one_error_line(runs["migrate_nowhere"], "give --save_path, --export_dir")


def readme_serving_snippet():
  with open(os.path.join(REPO_ROOT, "docs", "serving.md"), encoding="utf-8") as f:
    readme = f.read()
  snippets = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
  [snippet] = [s for s in snippets if "TFSMLayer" in s]
  return snippet


@pytest.mark.parametrize("port", ["legacy", "modern"])
def test_the_readme_snippet_loads_each_export_as_keras_does(port, runs, mnist_test):
  path = str(runs["root"] / port / "1")
  code = readme_serving_snippet().replace('"/tmp/mnist/1"', repr(path))
  scope = {"images": mnist_test.images[:500]}
  exec(code, scope)  # pylint: disable=exec-used
  expected = np.load(runs["root"] / f"{port}.npz")["classes"][:500]
  np.testing.assert_array_equal(np.asarray(scope["classes"]), expected)
  np.testing.assert_array_equal(np.asarray(scope["layer_classes"]), expected)


def signature_lines(proc):
  """saved_model_cli's signature, without tensor names or log lines."""
  assert proc.returncode == 0, proc.stderr
  start = proc.stdout.index("The given SavedModel SignatureDef")
  return [line for line in proc.stdout[start:].splitlines()
          if not line.strip().startswith("name:")]


def test_saved_model_cli_shows_one_signature_for_both_ports(runs):
  legacy = signature_lines(runs["legacy_cli"])
  assert legacy == signature_lines(runs["modern_cli"])
  text = "\n".join(legacy)
  assert re.search(r"inputs\['images'\] tensor_info:\s+dtype: DT_FLOAT\s+"
                   r"shape: \(-1, 784\)", text)
  assert re.search(r"outputs\['classes'\] tensor_info:\s+dtype: DT_INT64\s+"
                   r"shape: \(-1\)", text)
  assert re.search(r"outputs\['probabilities'\] tensor_info:\s+dtype: DT_FLOAT"
                   r"\s+shape: \(-1, 10\)", text)
  assert legacy[-1] == f"Method name is: {serving.METHOD}"


def test_versions_count_up_and_nothing_else_is_left(runs):
  assert runs["legacy_again"].returncode == 0, runs["legacy_again"].stderr
  assert sorted(os.listdir(runs["root"] / "legacy")) == ["1", "2"]
  assert os.listdir(runs["root"] / "modern") == ["1"]


def test_an_existing_version_is_refused_before_training(runs):
  # stdout empty: not one epoch ran.
  assert_one_error_line(runs["refused"], "--export_dir",
                        os.path.join(str(runs["root"] / "legacy"), "1"),
                        "already exists")


def test_a_bad_export_dir_is_one_line_before_training(runs):
  assert_one_error_line(runs["read_only"], "--export_dir", "not a writable directory")
  assert os.listdir(runs["root"] / "read_only") == []
  assert_one_error_line(runs["version_0"], "--export_version must be a positive number")
  assert_one_error_line(runs["version_alone"], "--export_version needs --export_dir")
  assert not os.path.exists(runs["root"] / "unused")


# ---------------------------------------------------------------- serving.predict


def test_predict_prints_the_evaluate_commands_lines(runs, mnist_test):
  proc = runs["predict"]
  assert proc.returncode == 0, proc.stderr
  assert proc.stderr == ""
  lines = proc.stdout.splitlines()
  assert lines[0] == trained_accuracy(runs["modern"])
  classes = np.load(runs["root"] / "modern.npz")["classes"]
  labels = mnist_test.labels.argmax(axis=1)
  assert lines[1:] == [f"test[{i}]: predicted {classes[i]}, label {labels[i]}"
                       for i in PREDICT]


@pytest.mark.parametrize("case, fragments", [
    ("not_a_saved_model", ("is not a SavedModel",)),
    ("corrupt", ("cannot load the SavedModel", "saved_model.pb")),
    ("unnamed", ("has no serving_default signature", "other")),
    ("square", ("must take images float32 [None, 784]", "(None, 28, 28)")),
])
def test_predict_bad_input_is_one_line(case, fragments, runs):
  assert_one_error_line(runs[case], *fragments)


# ---------------------------------------------------------------- REST requests


@pytest.fixture(scope="module")
def servables(runs):
  """Each export as TF Serving holds it (serving/rest.py), loaded once."""
  root = runs["root"]
  paths = {"legacy": root / "legacy" / "1", "modern": root / "modern" / "1",
           "unnamed": root / "unnamed", "text": root / "text"}
  return {name: rest.Servable(str(path)) for name, path in paths.items()}


def served(runs, port, count):
  """The port's export's outputs on the first `count` test images, from plain
  TensorFlow: classes of the whole test set's batch, probabilities of a batch
  of `count` (one of REQUEST_SIZES)."""
  outputs = np.load(runs["root"] / f"{port}.npz")
  return outputs["classes"][:count], outputs[f"probabilities_{count}"]


def answered(servable, request, status=200):
  """The parsed JSON body of TF Serving's answer to `request` (a dict)."""
  body = request if isinstance(request, bytes) else json.dumps(request).encode()
  got_status, text = rest.answer(servable, body)
  assert got_status == status, text
  return json.loads(text), text


@pytest.mark.parametrize("port", ["legacy", "modern"])
def test_a_row_request_gets_one_object_per_instance(port, runs, servables,
                                                    mnist_test):
  images = mnist_test.images[:5]
  answer, text = answered(servables[port], {"instances": images.tolist()})
  assert list(answer) == ["predictions"]
  classes, probabilities = served(runs, port, 5)
  assert len(answer["predictions"]) == 5
  for item, expected_class, expected_probabilities in zip(
      answer["predictions"], classes, probabilities):
    assert sorted(item) == ["classes", "probabilities"]
    assert type(item["classes"]) is int and item["classes"] == expected_class
    assert all(type(p) is float for p in item["probabilities"])
    # Written in digits that give back each float32 the model computed.
    np.testing.assert_array_equal(np.float32(item["probabilities"]),
                                  expected_probabilities)
  # One named input: rows may be objects too, and the signature named.
  objects = {"signature_name": serving.SIGNATURE,
             "instances": [{serving.INPUT: row} for row in images.tolist()]}
  assert answered(servables[port], objects)[1] == text


@pytest.mark.parametrize("port", ["legacy", "modern"])
def test_a_columnar_request_gets_an_object_of_outputs(port, runs, servables,
                                                      mnist_test):
  images = mnist_test.images[:4].tolist()
  answer, text = answered(servables[port], {"inputs": images})
  assert list(answer) == ["outputs"]
  assert sorted(answer["outputs"]) == ["classes", "probabilities"]
  classes, probabilities = served(runs, port, 4)
  assert answer["outputs"]["classes"] == classes.tolist()
  assert all(type(c) is int for c in answer["outputs"]["classes"])
  np.testing.assert_array_equal(np.float32(answer["outputs"]["probabilities"]),
                                probabilities)
  assert answered(servables[port], {"inputs": {serving.INPUT: images}})[1] == text


def test_a_named_signature_with_one_output_answers_bare_values(servables,
                                                               mnist_test):
  images = mnist_test.images[:3]
  answer, _ = answered(servables["unnamed"],
                       {"signature_name": "other", "instances": images.tolist()})
  assert answer == {"predictions": images.argmax(axis=1).tolist()}
  answer, _ = answered(servables["unnamed"],
                       {"signature_name": "other", "inputs": images.tolist()})
  assert answer == {"outputs": images.argmax(axis=1).tolist()}


@pytest.mark.parametrize("request_body, message", [
    ({"signature_name": "nope", "instances": [[0.5] * 784]},
     'Serving signature name: "nope" not found in signature def'),
    ({"instances": [[0.5] * 784, [0.5] * 783]},
     "Failed to process element: 1 of 'instances' list. Error: "
     "INVALID_ARGUMENT: Expecting tensor size: 784 but got: 783"),
    ({"instances": [{"pixels": [0.5] * 784}]},
     "Failed to process element: 0 key: pixels of 'instances' list. Error: "
     "INVALID_ARGUMENT: JSON object: does not have named input: pixels"),
    ({"instances": [[0.5] * 784], "inputs": [[0.5] * 784]}, "Not formatted "
     "correctly expecting only one of 'inputs' or 'instances' keys to exist "),
    ({"signature_name": "serving_default"}, "Missing 'inputs' or 'instances' key"),
    (b'{"instances": [[0.5, 0.5,]]}',
     "JSON Parse error: Invalid value. at offset: 25"),
])
def test_a_request_the_server_rejects_gets_its_error_body(request_body, message,
                                                          servables):
  for port in ("legacy", "modern"):
    answer, _ = answered(servables[port], request_body, status=400)
    assert list(answer) == ["error"]
    assert answer["error"].endswith(message), answer["error"]


def test_the_wrong_inner_length_fails_in_the_model_as_on_the_server(servables):
  for port in ("legacy", "modern"):
    answer, _ = answered(servables[port], {"inputs": [[0.5] * 783] * 2},
                         status=400)
    assert answer["error"].startswith(
        "Matrix size-incompatible: In[0]: [2,783], In[1]: [784,"), answer
  answer, _ = answered(servables["unnamed"], {"instances": [[0.5] * 784]},
                       status=400)
  assert answer == {"error": 'Serving signature name: "serving_default" not '
                             "found in signature def"}


def test_a_signature_of_strings_is_refused_as_unchecked(servables):
  with pytest.raises(UserError, match="--request: the serving_default input "
                     "text is string; requests are checked for float32"):
    rest.answer(servables["text"], b'{"instances": ["a"]}')


def test_the_command_prints_the_answer_and_refuses_with_status_2(runs, servables,
                                                                 mnist_test):
  proc = runs["request_row"]
  assert proc.returncode == 0, proc.stderr
  assert proc.stderr == ""
  request = rest_request(mnist_test.images[:ROW_REQUEST])
  assert proc.stdout == rest.answer(servables["modern"], request)[1] + "\n"
  assert len(json.loads(proc.stdout)["predictions"]) == ROW_REQUEST
  rejected = runs["request_rejected"]
  body = rest.answer(servables["modern"],
                     (runs["root"] / "too_short.json").read_bytes())[1]
  assert_one_error_line(rejected, "TensorFlow Serving would answer HTTP 400",
                        stdout=body + "\n")
  assert json.loads(rejected.stdout)["error"].startswith("Matrix size-incompatible")
  assert_one_error_line(runs["request_missing"], "--request=",
                        "missing.json: --request must be a file holding the "
                        "request, or - for stdin")


# ---------------------------------------------------------------- TFLite


def tflite_classes(path, images):
  runner = console.tflite_interpreter(path.read_bytes()).get_signature_runner(
      serving.SIGNATURE)
  return runner(**{serving.INPUT: images})[serving.CLASSES]


def test_both_ports_tflite_models_give_the_savedmodel_classes(runs, mnist_test,
                                                             capsys):
  root = runs["root"]
  savedmodel = np.load(root / "legacy.npz")["classes"]  # = migrated's (above)
  agree = {}
  for name in ("legacy", "migrated"):
    proc = runs[f"{name}_tflite"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    size = (root / f"{name}.tflite").stat().st_size
    export = root / "legacy" / "1" if name == "legacy" else root / "migrated" / "1"
    assert proc.stdout == (f"Wrote {root / f'{name}.tflite'}: {size:,} bytes, "
                           f"the serving_default signature of {export}\n")
    classes = tflite_classes(root / f"{name}.tflite", mnist_test.images)
    assert classes.shape == (10_000,)
    agree[name] = int((classes == savedmodel).sum())
  with capsys.disabled():
    print(f"\nTFLite classes equal to the SavedModel's, of 10000: {agree}")
  assert min(agree.values()) >= 9_990, agree
  assert not [name for name in os.listdir(root) if name.endswith(".tmp")]


def test_tflite_prints_the_evaluate_commands_lines(runs, mnist_test):
  proc = runs["tflite_predict"]
  assert proc.returncode == 0, proc.stderr
  assert proc.stderr == ""  # no deprecation warning, no XNNPACK line
  classes = tflite_classes(runs["root"] / "migrated.tflite", mnist_test.images)
  expected = serving_predict.evaluated(classes, mnist_test)
  labels = mnist_test.labels.argmax(axis=1)
  assert proc.stdout.splitlines() == (
      [console.accuracy_line(expected.accuracy)]
      + [f"test[{i}]: predicted {classes[i]}, label {labels[i]}" for i in PREDICT])


def test_tflite_bad_input_is_one_line(runs):
  assert_one_error_line(runs["tflite_missing"], "missing.tflite: --tflite "
                        "must be a .tflite file")
  assert_one_error_line(runs["to_tflite_nowhere"],
                        "--to_tflite must name a file in an existing directory")
  assert not os.path.exists(runs["root"] / "missing")
  with pytest.raises(UserError, match="--tflite .*saved_model.pb is not a "
                     "TFLite model: The model is not a valid Flatbuffer"):
    serving_tflite.predict(str(runs["root"] / "corrupt" / "saved_model.pb"), None)


# ---------------------------------------------------------------- common/serving.py


def test_prepare_export_counts_up_and_refuses_a_taken_version(tmp_path):
  base = tmp_path / "base"
  assert serving.prepare_export(str(base)).version == 1  # creates BASE
  for name in ("1", "7", "x9", ".export-8-tmp"):
    (base / name).mkdir()
  assert serving.versions(str(base)) == [1, 7]
  assert serving.prepare_export(str(base)).version == 8
  assert serving.prepare_export(str(base), 3).path == str(base / "3")
  with pytest.raises(UserError, match="already exists"):
    serving.prepare_export(str(base), 7)


def test_a_failed_export_leaves_nothing(tmp_path):
  target = serving.prepare_export(str(tmp_path))
  with pytest.raises(RuntimeError):
    with serving.export_path(target) as path:
      os.mkdir(path)
      raise RuntimeError("the writer failed")
  assert os.listdir(tmp_path) == []
