"""Predicts with any export, whichever port wrote it: the test set, a
TensorFlow Serving REST request, or a TFLite conversion.

  python -m serving.predict --saved_model BASE[/N] [--predict 0,7,42]
  python -m serving.predict --saved_model BASE[/N] --request FILE|-
  python -m serving.predict --saved_model BASE[/N] --to_tflite FILE
  python -m serving.predict --tflite FILE [--predict 0,7,42]

--saved_model is a SavedModel directory, or an --export_dir BASE (its
highest version N is read, as TensorFlow Serving serves the latest). The
model is loaded with plain tf.saved_model.load and called through its
serving_default signature (common/serving.py); this package imports
neither port. Prints the training run's `Accuracy: ...` line, from the
signature's `classes`, then `test[7]: predicted 9, label 9` for each
--predict index, as the evaluate commands do. --tflite prints the same
lines for a TFLite model (serving/tflite.py).

--request answers a predict request in TF Serving's REST format (row
`{"instances": ...}` or columnar `{"inputs": ...}`, FILE `-` for stdin)
with the body the server would send (serving/rest.py); a request it would
reject gets its `{"error": ...}` body, and exit status 2.
"""

import os
import sys

from absl import flags
import numpy as np

from common import cli
from common import errors
from common import evaluation
from common import flags as common_flags
from common import hparams as hp
from common import input_data
from common import serving

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("saved_model", None,
                      "A SavedModel directory, or an --export_dir BASE "
                      "(its highest numbered version).")
  flags.DEFINE_string("tflite", None,
                      "A TFLite model (.tflite) to predict with, instead of "
                      "--saved_model.")
  flags.DEFINE_string("request", None,
                      "A TensorFlow Serving REST predict request (JSON; - "
                      "for stdin): print the body the server would answer.")
  flags.DEFINE_string("to_tflite", None,
                      "Convert --saved_model's serving_default signature "
                      "to a TFLite model, written to this file.")
  common_flags.define_predict_flag()
  common_flags.define_data_dir_flag()
  _register_validators()
  common_flags.make_key_flags(__name__)


def _register_validators() -> None:
  def one_of(*names):
    return lambda f: sum(f[name] is not None for name in names) <= 1

  flags.register_multi_flags_validator(
      ["saved_model", "tflite"],
      lambda f: (f["saved_model"] is None) != (f["tflite"] is None),
      message="give --saved_model BASE[/N] or --tflite FILE (one of them)")
  flags.register_multi_flags_validator(
      ["request", "to_tflite", "predict"], one_of("request", "to_tflite", "predict"),
      message="--request, --to_tflite and --predict are separate uses; give one")
  flags.register_multi_flags_validator(
      ["tflite", "request", "to_tflite"],
      lambda f: f["tflite"] is None or f["request"] is f["to_tflite"] is None,
      message="--request and --to_tflite take a --saved_model, not --tflite")
  flags.register_validator(
      "to_tflite", lambda v: v is None or (common_flags.in_existing_directory(v)
                                           and not os.path.isdir(v)),
      message="--to_tflite must name a file in an existing directory")
  flags.register_validator(
      "request", lambda v: v in (None, "-") or os.path.isfile(v),
      message="--request must be a file holding the request, or - for stdin")
  flags.register_validator("tflite", lambda v: v is None or os.path.isfile(v),
                           message="--tflite must be a .tflite file")


def resolve(path: str) -> str:
  """`path` itself if it holds a SavedModel, else BASE's highest version."""
  if os.path.isfile(os.path.join(path, "saved_model.pb")):
    return path
  versions = serving.versions(path)
  if versions:
    return os.path.join(path, str(versions[-1]))
  raise errors.UserError(f"--saved_model {path} is not a SavedModel, nor a "
                         "directory of numbered versions of one")


def load_signature(path: str):
  """The serving_default function of the SavedModel at `path`, checked."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (quietly, first)
  try:
    loaded = tf.saved_model.load(path)
  except (OSError, ValueError, tf.errors.OpError) as e:
    raise errors.UserError(f"cannot load the SavedModel {path}: "
                           f"{errors.first_line(e)}") from None
  if serving.SIGNATURE not in loaded.signatures:
    raise errors.UserError(
        f"the SavedModel {path} has no {serving.SIGNATURE} signature (it has: "
        f"{', '.join(sorted(loaded.signatures)) or 'none'})")
  function = loaded.signatures[serving.SIGNATURE]
  _check_signature(path, function)
  return loaded, function


def _check_signature(path: str, function) -> None:
  """serving_default takes images float32 [None, 784] and returns classes."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  args, kwargs = function.structured_input_signature
  spec = kwargs.get(serving.INPUT)
  expected = tf.TensorSpec([None, hp.IMAGE_PIXELS], tf.float32)
  if (args or set(kwargs) != {serving.INPUT} or spec.dtype != expected.dtype
      or spec.shape.as_list() != expected.shape.as_list()):
    found = ", ".join(f"{name} {s.dtype.name} {s.shape}"
                      for name, s in sorted(kwargs.items())) or "none"
    raise errors.UserError(
        f"the {serving.SIGNATURE} signature of {path} must take "
        f"{serving.INPUT} float32 [None, {hp.IMAGE_PIXELS}]; it takes {found}")
  if serving.CLASSES not in function.structured_outputs:
    raise errors.UserError(f"the {serving.SIGNATURE} signature of {path} "
                           f"returns no {serving.CLASSES}")


def predict(path: str, test: input_data.DataSet) -> evaluation.Evaluation:
  """The test set through the signature in one batch, as training runs it."""
  _, function = load_signature(path)
  classes = function(**{serving.INPUT: test.images})[serving.CLASSES].numpy()
  return evaluated(classes, test)


def evaluated(classes: np.ndarray, test: input_data.DataSet) -> evaluation.Evaluation:
  """The test accuracy of predicted `classes` [10000], as training computes it."""
  correct = classes == test.labels.argmax(axis=1)
  # float32 sum / float32 count: the division TensorFlow's reduce_mean does.
  accuracy = np.float32(correct.sum()) / np.float32(test.num_examples)
  return evaluation.Evaluation(accuracy, classes)


def read_request(path: str) -> bytes:
  """--request's bytes: the file's, or stdin's for `-`."""
  if path == "-":
    return sys.stdin.buffer.read()
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as e:
    raise errors.UserError(f"cannot read --request {path}: {e.strerror}") from None


def answer_request(path: str, request: str) -> None:
  """Prints TF Serving's answer to the request; a rejection is exit status 2."""
  from serving import rest  # pylint: disable=g-import-not-at-top
  body = read_request(request)
  status, answer = rest.answer(rest.Servable(path), body)
  print(answer)
  if status != 200:
    raise errors.UserError(f"TensorFlow Serving would answer HTTP {status}: "
                           "the request is rejected, for the reason on stdout")


def to_tflite(path: str, tflite_path: str) -> None:
  from serving import tflite  # pylint: disable=g-import-not-at-top
  load_signature(path)  # a SavedModel this project serves, before converting
  size = tflite.convert(path, tflite_path)
  print(f"Wrote {tflite_path}: {size:,} bytes, the {serving.SIGNATURE} "
        f"signature of {path}")


def main() -> None:
  if FLAGS.request is not None:
    return answer_request(resolve(FLAGS.saved_model), FLAGS.request)
  if FLAGS.to_tflite is not None:
    return to_tflite(resolve(FLAGS.saved_model), FLAGS.to_tflite)
  test = evaluation.read_test_set(FLAGS.data_dir)
  indices = evaluation.predict_indices(FLAGS.predict, test)
  if FLAGS.tflite is not None:
    from serving import tflite  # pylint: disable=g-import-not-at-top
    result = evaluated(tflite.predict(FLAGS.tflite, test), test)
  else:
    result = predict(resolve(FLAGS.saved_model), test)
  evaluation.print_evaluation(result, test, indices)


if __name__ == "__main__":
  cli.run_command(define_flags, main)
