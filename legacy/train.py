"""Trains and evaluates the homework MLP in a TF1 graph (after TF1's
tutorial fully_connected_feed.py): placeholders, Session and feed_dict.

The graph lives in its own tf.Graph and Session, so nothing here touches
TensorFlow's process-wide behaviour and a Keras model can share the process.
Checkpoints (--checkpoint_dir, checkpoints.py) use tf.compat.v1.train.Saver,
TensorBoard scalars (--logdir, summaries.py) tf.compat.v1.summary.FileWriter.
"""

import dataclasses
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from common import console
from common import errors
from common import files
from common import hparams as hp
from common import input_data
from common import serving
from legacy import checkpoints
from legacy import export
from legacy import mlp
from legacy import summaries

v1 = tf.compat.v1


@dataclasses.dataclass
class TrainingResult:
  epoch_costs: List[float]
  accuracy: float
  weights: Dict[str, np.ndarray]  # "hidden1/weights" -> value


@dataclasses.dataclass
class Model:
  """Handles on the tensors and ops of one built graph."""
  graph: tf.Graph
  images: tf.Tensor
  labels: tf.Tensor
  keep_prob: Optional[tf.Tensor]  # None when no dropout was built
  logits: tf.Tensor
  cost: tf.Tensor
  train_op: tf.Operation
  accuracy: tf.Tensor
  init_op: tf.Operation


def placeholder_inputs():
  """X [None, 784] images and Y [None, 10] one-hot labels."""
  images = v1.placeholder(tf.float32, [None, hp.IMAGE_PIXELS], name="X")
  labels = v1.placeholder(tf.float32, [None, hp.NUM_CLASSES], name="Y")
  return images, labels


def fill_feed_dict(model: Model, images, labels, keep_prob: float = 1.0):
  """The feed for one run; keep_prob is fed only if dropout was built."""
  feed = {model.images: images, model.labels: labels}
  if model.keep_prob is not None:
    feed[model.keep_prob] = keep_prob
  return feed


def build_model(hparams: hp.HParams, device=None) -> Model:
  """Builds the whole graph for `hparams` in a new tf.Graph.

  `device`: a device name or function for every op (a cluster's
  replica_device_setter, legacy/distributed.py); None leaves placement to TF.
  """
  graph = tf.Graph()
  with graph.as_default(), graph.device(device):
    if hparams.seed is not None:
      v1.set_random_seed(hparams.seed)
    images, labels = placeholder_inputs()
    # With keep_prob 1 no dropout op is built: hw04's graph is the original's.
    keep_prob = (v1.placeholder(tf.float32, [], name="keep_prob")
                 if hparams.keep_prob < 1 else None)
    logits = mlp.inference(images, hparams.hidden_units, hparams.activation,
                           hparams.init, hparams.bias_init, keep_prob,
                           hparams.dropout_layers)
    cost = mlp.loss(logits, labels)
    train_op = mlp.training(cost, hparams.optimizer, hparams.learning_rate,
                            hparams.beta1, hparams.beta2, hparams.epsilon)
    accuracy = mlp.evaluation(logits, labels)
    init_op = v1.global_variables_initializer()
  return Model(graph, images, labels, keep_prob, logits, cost, train_op,
               accuracy, init_op)


def model_weights(sess, model: Model) -> Dict[str, np.ndarray]:
  """The trained weights and biases by variable name, without ":0"."""
  variables = model.graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)
  values = sess.run(variables)
  return {v.op.name: value for v, value in zip(variables, values)}


def run_training(hparams: hp.HParams, data_sets: input_data.Datasets,
                 save_path: Optional[str] = None,
                 checkpoint_dir: Optional[str] = None,
                 logdir: Optional[str] = None,
                 export_target: Optional[serving.ExportTarget] = None,
                 print_fn=print) -> TrainingResult:
  """Trains for `hparams.training_epochs` epochs, printing the original lines.

  With `checkpoint_dir`, first resumes from the checkpoint there if any, and
  saves one at every epoch end (checkpoints.py); with `logdir`, writes the
  TensorBoard scalars (summaries.py); with `export_target`, exports the
  trained model for serving (export.py).
  """
  # Check the output directories, and take the seed a checkpoint_dir keeps.
  if logdir:
    files.writable_directory(logdir, "--logdir")
  hparams = checkpoints.prepare(checkpoint_dir, hparams)

  # Build the graph: inference, loss, training and evaluation ops.
  model = build_model(hparams)
  checkpointer = (checkpoints.Checkpoints(checkpoint_dir, model.graph)
                  if checkpoint_dir else None)
  train = data_sets.train
  total_batch = train.num_examples // hparams.batch_size

  with v1.Session(graph=model.graph) as sess:
    # Initialize the variables, then restore the last checkpoint if any.
    sess.run(model.init_op)
    state = checkpoints.resume(sess, checkpointer, model, train, hparams)
    scalars = summaries.Summaries(logdir, model.graph, state,
                                  hparams.training_epochs, resumed=state.epoch > 0)
    try:
      # The training loop: one feed_dict step per batch.
      for epoch in range(state.epoch + 1, hparams.training_epochs + 1):
        avg_cost = 0.0
        for step in range(1, total_batch + 1):
          batch_xs, batch_ys = train.next_batch(hparams.batch_size)
          feed = fill_feed_dict(model, batch_xs, batch_ys, hparams.keep_prob)
          _, c = sess.run([model.train_op, model.cost], feed_dict=feed)
          if not np.isfinite(c):
            raise errors.NonFiniteCostError(epoch, step)
          avg_cost += c / total_batch
        state = checkpoints.next_state(state, avg_cost,
                                       train if checkpointer else None)
        print_fn(console.epoch_line(epoch, avg_cost))
        # Save the epoch's checkpoint and its TensorBoard scalar.
        if checkpointer:
          checkpointer.save(sess, state)
        scalars.write_cost(epoch, avg_cost)

      # Evaluate on the whole test set, without dropout.
      test = data_sets.test
      accuracy = sess.run(model.accuracy,
                          feed_dict=fill_feed_dict(model, test.images, test.labels))
      print_fn(console.accuracy_line(accuracy))
      scalars.write_final_accuracy(accuracy)
    finally:
      scalars.close()
    if save_path:
      checkpoints.save_model(sess, model.graph, save_path)
    weights = model_weights(sess, model)
  if export_target:
    export.export(weights, hparams, export_target)
  return TrainingResult(state.epoch_costs, float(accuracy), weights)
