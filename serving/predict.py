"""Predicts the MNIST test set with any export, whichever port wrote it.

  python -m serving.predict --saved_model BASE[/N] [--predict 0,7,42]

--saved_model is a SavedModel directory, or an --export_dir BASE (its
highest version N is read). The model is loaded with plain
tf.saved_model.load and called through its serving_default signature
(common/serving.py), as TensorFlow Serving would call it; this package
imports neither port. Prints the training run's `Accuracy: ...` line, from
the signature's `classes`, then `test[7]: predicted 9, label 9` for each
--predict index, as the evaluate commands do.
"""

import os

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
  flags.mark_flag_as_required("saved_model")
  common_flags.define_predict_flag()
  common_flags.define_data_dir_flag()
  common_flags.make_key_flags(__name__)


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
  correct = classes == test.labels.argmax(axis=1)
  # float32 sum / float32 count: the division TensorFlow's reduce_mean does.
  accuracy = np.float32(correct.sum()) / np.float32(test.num_examples)
  return evaluation.Evaluation(accuracy, classes)


def main() -> None:
  test = evaluation.read_test_set(FLAGS.data_dir)
  indices = evaluation.predict_indices(FLAGS.predict, test)
  result = predict(resolve(FLAGS.saved_model), test)
  evaluation.print_evaluation(result, test, indices)


if __name__ == "__main__":
  cli.run_command(define_flags, main)
