"""Evaluates a legacy TF1 checkpoint on the MNIST test set: graph, Saver, Session.

  python -m legacy.evaluate --checkpoint /tmp/hw05 [--activation tanh]
                            [--predict 0,7,42]

--checkpoint is the prefix a legacy run's --save_path wrote, or a directory
with a `checkpoint` state file (its latest checkpoint). The layer sizes come
from the checkpoint's variable shapes; the activation, which a checkpoint
does not hold, from --activation or the run's hparams.json beside it (a
--checkpoint_dir run keeps one; the two must agree), else sigmoid (the
scripts'). Prints the training run's `Accuracy: ...` line, then
`test[7]: predicted 9, label 9` for each --predict index. Name for name with
modern/evaluate.py.
"""

from typing import Optional

from absl import flags

from common import cli
from common import errors
from common import evaluation
from common import flags as common_flags
from common import hparams as hp
from common import input_data

FLAGS = flags.FLAGS


def define_checkpoint_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """--checkpoint and --activation: the commands that read a TF1 checkpoint."""
  fv = dict(flag_values=flag_values)
  flags.DEFINE_string("checkpoint", None,
                      "The legacy TF1 checkpoint: the prefix a legacy run's "
                      "--save_path wrote, or a directory with a `checkpoint` "
                      "state file (its latest checkpoint is read).", **fv)
  flags.mark_flag_as_required("checkpoint", **fv)
  # A TF1 checkpoint holds the variables only, not the activation between them.
  flags.DEFINE_enum("activation", None, hp.ACTIVATIONS,
                    "The hidden layers' activation in training. Default: "
                    "what the run's hparams.json beside the checkpoint "
                    "records (a --checkpoint_dir run's), else "
                    f"{hp.HParams().activation} (the scripts').", **fv)
  common_flags.make_key_flags(__name__, flag_values)


def define_flags() -> None:
  define_checkpoint_flags()
  common_flags.define_predict_flag()
  common_flags.define_data_dir_flag()


def evaluate(checkpoint_path: str, test: input_data.DataSet,
             activation: Optional[str] = None) -> evaluation.Evaluation:
  """Restores the checkpoint into a freshly built graph and runs the test set.

  The graph is legacy's own (train.placeholder_inputs, mlp.inference,
  mlp.evaluation) without dropout, so its variables carry the names the
  training graph saved (hidden1/weights, ...): a Saver restores them by name
  and ignores what else the checkpoint holds (optimizer slots, step counter).
  """
  # Imported here, not at the top: `python -m legacy.evaluate` has to import
  # TensorFlow quietly first (common/console.py).
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from legacy import checkpoints  # pylint: disable=g-import-not-at-top
  from legacy import mlp  # pylint: disable=g-import-not-at-top
  from legacy import train  # pylint: disable=g-import-not-at-top
  v1 = tf.compat.v1

  checkpoint = checkpoints.read_mlp_checkpoint(checkpoint_path, activation)
  graph = tf.Graph()
  with graph.as_default():
    images, labels = train.placeholder_inputs()
    logits = mlp.inference(images, checkpoint.hidden_units, checkpoint.activation)
    accuracy = mlp.evaluation(logits, labels)
    saver = v1.train.Saver()  # every variable of this graph: the MLP's
  with v1.Session(graph=graph) as sess:
    try:
      saver.restore(sess, checkpoint.prefix)
    except tf.errors.OpError as e:  # checked already; the files changed since?
      raise errors.UserError(
          f"cannot restore {checkpoint.prefix}: "
          f"{errors.first_line(e)}") from None
    # Fed as training feeds it for its accuracy line: the whole set at once.
    value, logit_values = sess.run(
        [accuracy, logits], feed_dict={images: test.images, labels: test.labels})
  return evaluation.Evaluation(value, logit_values.argmax(axis=1))


def main() -> None:
  test = evaluation.read_test_set(FLAGS.data_dir)
  indices = evaluation.predict_indices(FLAGS.predict, test)
  result = evaluate(FLAGS.checkpoint, test, FLAGS.activation)
  evaluation.print_evaluation(result, test, indices)


if __name__ == "__main__":
  cli.run_command(define_flags, main)
