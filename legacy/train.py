"""Trains and evaluates the homework MLP in a TF1 graph (after TF1's
tutorial fully_connected_feed.py): placeholders, Session and feed_dict.

The graph lives in its own tf.Graph and Session, so nothing here touches
TensorFlow's process-wide behaviour and a Keras model can share the process.
Checkpoints (--checkpoint_dir) use tf.compat.v1.train.Saver, TensorBoard
scalars (--logdir) tf.compat.v1.summary.FileWriter.
"""

import dataclasses
import os
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from common import checkpoints
from common import console
from common import errors
from common import hparams as hp
from common import input_data
from common import summaries
from legacy import mlp

v1 = tf.compat.v1


# The images legacy asks read_data_sets for (common/cli.py): float32 in
# [0, 1], fed as they are, as TF1's tutorial fed them.
IMAGE_DTYPE = np.float32


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


def build_model(hparams: hp.HParams) -> Model:
  """Builds the whole graph for `hparams` in a new tf.Graph."""
  graph = tf.Graph()
  with graph.as_default():
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


class Checkpoints:
  """The graph's checkpoints in --checkpoint_dir, saved with a TF1 Saver.

  Every global variable is saved under its TF1 name ("hidden1/weights",
  "hidden1/weights/Adam", "beta1_power", "global_step", ...), plus
  `training_state`: the JSON of a common.checkpoints.TrainingState.
  """

  def __init__(self, checkpoint_dir: str, model: Model):
    self.directory = checkpoint_dir
    self.prefix = os.path.join(checkpoint_dir, "model.ckpt")  # as in TF1's tutorial
    # Built after the model, so that its random ops keep their seeds.
    with model.graph.as_default():
      self.state = tf.Variable("", trainable=False, name="training_state")
      self.state_input = v1.placeholder(tf.string, [], name="training_state_input")
      self.assign_state = self.state.assign(self.state_input)
      # save() moves the pointer and deletes old checkpoints itself
      # (write_state=False), so that nothing happens before the files are whole.
      self.saver = v1.train.Saver()

  def restore(self, sess) -> Optional[checkpoints.TrainingState]:
    """Restores the latest checkpoint, if any; returns its TrainingState."""
    path = checkpoints.latest_checkpoint(self.directory)
    if path is None:
      return None
    try:
      self.saver.restore(sess, path)
      return checkpoints.TrainingState.from_json(sess.run(self.state))
    except Exception as e:  # pylint: disable=broad-except
      # Whatever fails here, a file is damaged (TF raises OpErrors,
      # ValueError, even IndexError for a file cut short).
      raise checkpoints.restore_failed(path, e) from None

  def save(self, sess, state: checkpoints.TrainingState) -> None:
    """Saves checkpoint `state.epoch`; the pointer names it once it is complete."""
    with checkpoints.uninterrupted():
      sess.run(self.assign_state, {self.state_input: state.to_json()})
      path = self.saver.save(sess, self.prefix, global_step=state.epoch,
                             write_meta_graph=False, write_state=False)
      checkpoints.fault_point(state.epoch)
      # The pointer (written atomically) now names it, with the last few;
      # only then are older checkpoints deleted. Relative names: the
      # directory may be moved.
      name = os.path.basename(path)
      previous = [os.path.basename(p)
                  for p in checkpoints.kept_checkpoints(self.directory)]
      kept = [p for p in previous if p != name][1 - checkpoints.KEEP:] + [name]
      v1.train.update_checkpoint_state(self.directory, name, kept)
      for old in set(previous) - set(kept):
        v1.train.remove_checkpoint(os.path.join(self.directory, old))


# Random numbers one replaying run of the dropout ops may draw per op.
_REPLAY_CHUNK = 1 << 20


def replay_dropout(sess, model: Model, steps: int, batch_size: int) -> None:
  """Moves the dropout ops' random streams past `steps` training steps.

  TF1's stateful random ops keep their position in the session's kernels,
  not in a variable: a restored session would draw the first epoch's masks
  again. So the dropout ops alone draw again what the interrupted run drew,
  their noise shapes fed (no matmul runs). A kernel's Philox stream skips
  256 counters per number drawn, whatever the shape, so k steps of
  [batch, units] are drawn as one [k * batch, units]: the 8,250 steps of
  hw05's 15 epochs take a second or two, not ten. tests/test_checkpoint.py
  checks that the masks drawn next are the same either way.
  """
  noise_ops = [op for op in model.graph.get_operations()
               if op.type == "RandomUniform" and "dropout" in op.name.split("/")]
  if not noise_ops or not steps:
    return
  widest = max(op.outputs[0].shape[1] for op in noise_ops)
  steps_per_run = max(1, _REPLAY_CHUNK // (batch_size * widest))
  for done in range(0, steps, steps_per_run):
    rows = min(steps_per_run, steps - done) * batch_size
    sess.run(noise_ops, feed_dict={op.inputs[0]: [rows, op.outputs[0].shape[1]]
                                   for op in noise_ops})


def add_scalar(writer, tag: str, value: float, step: int) -> None:
  writer.add_summary(
      v1.Summary(value=[v1.Summary.Value(tag=tag, simple_value=value)]), step)
  writer.flush()


def run_training(hparams: hp.HParams, data_sets: input_data.Datasets,
                 save_path: Optional[str] = None,
                 checkpoint_dir: Optional[str] = None,
                 logdir: Optional[str] = None, print_fn=print) -> TrainingResult:
  """Trains for `hparams.training_epochs` epochs, printing the original lines.

  With `checkpoint_dir`, first resumes from the checkpoint there if any, and
  saves one at every epoch end (common/checkpoints.py); with `logdir`,
  writes the TensorBoard scalars of common/summaries.py.
  """
  if logdir:
    checkpoints.writable_directory(logdir, "--logdir")
  if checkpoint_dir:
    # A run without --seed gets one there: the dropout ops must draw the
    # same masks again when the run resumes.
    seed = checkpoints.prepare_directory(checkpoint_dir, "legacy", hparams)
    hparams = dataclasses.replace(hparams, seed=seed)
  model = build_model(hparams)
  checkpointer = Checkpoints(checkpoint_dir, model) if checkpoint_dir else None
  train = data_sets.train
  total_batch = train.num_examples // hparams.batch_size
  state = checkpoints.TrainingState()
  with v1.Session(graph=model.graph) as sess:
    sess.run(model.init_op)
    restored = checkpointer.restore(sess) if checkpointer else None
    if restored:
      checkpoints.check_epochs(checkpoint_dir, restored, hparams.training_epochs)
      state = restored
      train.restore(state.data)
      if model.keep_prob is not None:
        replay_dropout(sess, model, state.epoch * total_batch, hparams.batch_size)
    writer, accuracy_logged, missing = None, False, []
    if logdir:
      if restored:  # append to the interrupted run's events, never repeat them
        accuracy_logged = hparams.training_epochs in summaries.logged_steps(
            logdir, summaries.ACCURACY_TAG)
        missing = summaries.missing_costs(logdir, state.epoch_costs)
      with model.graph.as_default():  # FileWriter refuses eager mode
        writer = v1.summary.FileWriter(logdir, model.graph,
                                       filename_suffix=summaries.unique_suffix())
      for epoch, cost in missing:
        add_scalar(writer, summaries.COST_TAG, cost, epoch)
    try:
      for epoch in range(state.epoch + 1, hparams.training_epochs + 1):
        avg_cost = 0.0
        for step in range(1, total_batch + 1):
          batch_xs, batch_ys = train.next_batch(hparams.batch_size)
          feed = fill_feed_dict(model, batch_xs, batch_ys, hparams.keep_prob)
          _, c = sess.run([model.train_op, model.cost], feed_dict=feed)
          if not np.isfinite(c):
            raise errors.NonFiniteCostError(epoch, step)
          avg_cost += c / total_batch
        state = checkpoints.TrainingState(
            epoch, state.epoch_costs + [avg_cost],
            train.state() if checkpointer else None)
        print_fn(console.epoch_line(epoch, avg_cost))
        if checkpointer:
          checkpointer.save(sess, state)
        if writer:
          add_scalar(writer, summaries.COST_TAG, avg_cost, epoch)

      test = data_sets.test
      accuracy = sess.run(model.accuracy,
                          feed_dict=fill_feed_dict(model, test.images, test.labels))
      print_fn(console.accuracy_line(accuracy))
      if writer and not accuracy_logged:
        add_scalar(writer, summaries.ACCURACY_TAG, accuracy,
                   hparams.training_epochs)
    finally:
      if writer:
        writer.close()
    if save_path:
      with model.graph.as_default():
        v1.train.Saver().save(sess, save_path)
    return TrainingResult(state.epoch_costs, float(accuracy),
                          model_weights(sess, model))
