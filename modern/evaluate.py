"""Evaluates a Keras .keras model on the MNIST test set.

  python -m modern.evaluate --model /tmp/hw05.keras [--predict 0,7,42]

--model is what a modern run's --save_path wrote, or what
modern.migrate_checkpoint made of a legacy checkpoint. The file is loaded
with Keras' safe mode on and without this project's classes, as anyone's
Keras would load it. Prints the training run's `Accuracy: ...` line, then
`test[7]: predicted 9, label 9` for each --predict index. Name for name with
legacy/evaluate.py.
"""

from absl import flags

from common import cli
from common import evaluation
from common import flags as common_flags
from common import input_data
from modern import port

FLAGS = flags.FLAGS


def define_model_flag(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """--model: the commands that read a .keras file."""
  flags.DEFINE_string("model", None,
                      "The .keras file to evaluate: a modern run's --save_path, "
                      "or what modern.migrate_checkpoint wrote.",
                      flag_values=flag_values)
  flags.mark_flag_as_required("model", flag_values=flag_values)
  flags.register_validator(
      "model", port.is_keras_path,
      message="--model must be a .keras file (Keras' model file format)",
      flag_values=flag_values)
  common_flags.make_key_flags(__name__, flag_values)


def define_flags() -> None:
  define_model_flag()
  common_flags.define_predict_flag()
  common_flags.define_data_dir_flag()


def evaluate(model_path: str, test: input_data.DataSet) -> evaluation.Evaluation:
  """Loads the model and runs the test set through it.

  One batch of the whole set, and training's own accuracy metric
  (mlp.evaluation), as training's model.evaluate computes its accuracy line.
  """
  # Imported here, not at the top: `python -m modern.evaluate` has to import
  # TensorFlow quietly first (common/console.py).
  from modern import checkpoints  # pylint: disable=g-import-not-at-top
  from modern import mlp  # pylint: disable=g-import-not-at-top
  model = checkpoints.load_model(model_path)
  logits = model.predict(test.images, batch_size=test.num_examples, verbose=0)
  accuracy = mlp.evaluation()
  accuracy.update_state(test.labels, logits)
  return evaluation.Evaluation(accuracy.result().numpy(), logits.argmax(axis=1))


def main() -> None:
  test = evaluation.read_test_set(FLAGS.data_dir)
  indices = evaluation.predict_indices(FLAGS.predict, test)
  result = evaluate(FLAGS.model, test)
  evaluation.print_evaluation(result, test, indices)


if __name__ == "__main__":
  cli.run_command(define_flags, main)
