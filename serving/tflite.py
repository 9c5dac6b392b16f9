"""TFLite: a SavedModel's serving signature converted, and run on the test set.

  convert(saved_model, path) - tf.lite.TFLiteConverter.from_saved_model on
                               the serving_default signature, the .tflite
                               file written whole or not at all;
  predict(path, test)        - the test set through the file's
                               serving_default signature (tf.lite.Interpreter).

The converted model keeps the signature's names (common/serving.py):
images float32 [-1, 784] -> probabilities, classes. TF1 converted a Session's
graph (tf.compat.v1.lite.TFLiteConverter.from_session); from a SavedModel,
one converter serves the exports of both ports.
"""

import numpy as np

from common import console
from common import errors
from common import files
from common import hparams as hp
from common import input_data
from common import serving


def convert(saved_model: str, path: str) -> int:
  """Writes the SavedModel's serving_default as a TFLite model; returns its size."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  converter = tf.lite.TFLiteConverter.from_saved_model(
      saved_model, signature_keys=[serving.SIGNATURE])
  model = converter.convert()
  try:
    with files.atomic_path(path) as tmp:
      with open(tmp, "wb") as f:
        f.write(model)
  except OSError as e:
    raise errors.UserError(f"cannot write --to_tflite {path}: {e.strerror}; "
                           "give a file in a writable directory") from None
  return len(model)


def _signature_runner(path: str):
  """The serving_default runner of the TFLite file at `path`, checked."""
  try:
    with open(path, "rb") as f:
      content = f.read()
  except OSError as e:
    raise errors.UserError(f"cannot read --tflite {path}: {e.strerror}") from None
  try:
    interpreter = console.tflite_interpreter(content)
  except (ValueError, RuntimeError) as e:
    raise errors.UserError(f"--tflite {path} is not a TFLite model: "
                           f"{errors.first_line(e)}") from None
  signatures = interpreter.get_signature_list()
  if serving.SIGNATURE not in signatures:
    raise errors.UserError(
        f"the TFLite model {path} has no {serving.SIGNATURE} signature (it "
        f"has: {', '.join(sorted(signatures)) or 'none'}); convert it with "
        "--saved_model ... --to_tflite")
  runner = interpreter.get_signature_runner(serving.SIGNATURE)
  images = runner.get_input_details().get(serving.INPUT)
  if (images is None or images["dtype"] != np.float32
      or list(images["shape_signature"]) != [-1, hp.IMAGE_PIXELS]
      or serving.CLASSES not in runner.get_output_details()):
    raise errors.UserError(
        f"the {serving.SIGNATURE} signature of the TFLite model {path} must "
        f"take {serving.INPUT} float32 [-1, {hp.IMAGE_PIXELS}] and return "
        f"{serving.CLASSES}")
  return runner


def predict(path: str, test: input_data.DataSet) -> np.ndarray:
  """The predicted class of every test image, by the TFLite model at `path`."""
  runner = _signature_runner(path)
  return runner(**{serving.INPUT: test.images})[serving.CLASSES]
