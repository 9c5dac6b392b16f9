"""Evaluates a Keras .keras model on the MNIST test set.

  python -m modern.evaluate --model /tmp/hw05.keras [--predict 0,7,42]

--model is what a modern run's --save_path wrote, or what
modern.migrate_checkpoint made of a legacy checkpoint. The file is loaded
with Keras' safe mode on and without this project's classes, as anyone's
Keras would load it. Prints the training run's `Accuracy: ...` line, then
`test[7]: predicted 9, label 9` for each --predict index. Name for name with
legacy/evaluate.py.
"""

import os
import zipfile

from absl import flags

from common import errors
from common import hparams as hp
from common import input_data
from common import saved_models

FLAGS = flags.FLAGS


def load_model(model_path: str):
  """Loads a .keras file as anyone's Keras would: safe mode on, no project code.

  Uncompiled: evaluation needs no optimizer, and a migrated model has none.
  Raises UserError unless the file holds a model from 784 pixels to 10 logits.
  """
  import keras  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(model_path):
    raise errors.UserError(f"no model file at {model_path}: give the .keras "
                           "file a modern run's --save_path or "
                           "modern.migrate_checkpoint wrote")
  if not zipfile.is_zipfile(model_path):  # Keras would call it "not found"
    raise errors.UserError(f"{model_path} is not a .keras file (not a zip "
                           "archive: truncated, or another format); save it again")
  try:
    model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
  except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as e:
    raise errors.UserError(f"{model_path} is not a loadable Keras model "
                           f"({saved_models.first_line(e)}); save it again") from None
  shapes = (getattr(model, "input_shape", None), getattr(model, "output_shape", None))
  if shapes != ((None, hp.IMAGE_PIXELS), (None, hp.NUM_CLASSES)):
    raise errors.UserError(
        f"{model_path} maps {shapes[0]} to {shapes[1]}, not MNIST's "
        f"(None, {hp.IMAGE_PIXELS}) pixels to (None, {hp.NUM_CLASSES}) logits")
  return model


def evaluate(model_path: str, test: input_data.DataSet) -> saved_models.Evaluation:
  """Loads the model and runs the test set through it.

  One batch of the whole set, and training's own accuracy metric
  (mlp.evaluation), as training's model.evaluate computes its accuracy line.
  """
  from modern import mlp  # pylint: disable=g-import-not-at-top
  model = load_model(model_path)
  logits = model.predict(test.images, batch_size=test.num_examples, verbose=0)
  accuracy = mlp.evaluation()
  accuracy.update_state(test.labels, logits)
  return saved_models.Evaluation(accuracy.result().numpy(), logits.argmax(axis=1))


def main() -> None:
  test = saved_models.read_test_set(FLAGS.data_dir)
  indices = saved_models.predict_indices(FLAGS.predict, test)
  evaluation = evaluate(FLAGS.model, test)
  saved_models.print_evaluation(evaluation, test, indices)


if __name__ == "__main__":
  saved_models.run("modern.evaluate", main)
