"""Data-parallel training the TF2 way: MultiWorkerMirroredStrategy, a custom loop.

Each worker process holds a copy of the variables; every step, each worker
computes the gradients of its shard of the global batch (worker i takes
rows i*B/K .. (i+1)*B/K - 1 of the batch the single process would train on),
the copies' gradients are summed by an all-reduce, and every worker applies
the same update. The loss of each shard is its examples' summed cost over
the global batch size (tf.nn.compute_average_loss), so the summed gradient
is the single process's, and the printed cost (the sum of the shards'
losses) is the global batch's mean cost: K workers of B/K compute one
process of B, to float32 rounding (tests/test_cluster.py).

Keras 3's model.fit fails under this strategy (keras-team/keras#20585), so
the loop is written out with strategy.run around the single-process
port's own model, loss and optimizer. Only the chief (worker 0) prints,
writes checkpoints, TensorBoard files, --save_path and --export_dir.
Name for name with legacy/distributed.py.
"""

import dataclasses
import os
import sys
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from common.checkpoint_dir import TrainingState
from common import cluster
from common import console
from common import errors
from common import files
from common import hparams as hp
from common import input_data
from common import serving
from modern import checkpoints
from modern import export
from modern import summaries
from modern import train

SUM = tf.distribute.ReduceOp.SUM
# Added to a Dropout layer's seed once per worker index: masks differ.
_WORKER_SEED_STRIDE = 1_000_003


def join_cluster(role: cluster.Role) -> tf.distribute.MultiWorkerMirroredStrategy:
  """The strategy for the cluster $TF_CONFIG names, once every worker joined.

  Raises UserError if this task's port is taken, or if the other workers
  do not all answer within role.timeout seconds (cluster.rendezvous: the
  strategy's constructor would wait for them forever). No timeout is set
  on the all-reduces (CommunicationOptions(timeout_seconds=...)): TF starts
  a thread per timed collective and never ends them (9,000 threads after
  two epochs here, then an abort); a dead worker is noticed by the
  coordination service's heartbeats instead.
  """
  cluster.rendezvous(role)
  strategy = tf.distribute.MultiWorkerMirroredStrategy()
  # Each worker feeds its one replica its shard (worker_dataset).
  if strategy.num_replicas_in_sync != len(role.worker_hosts):
    raise errors.UserError(
        f"{role.name}: {strategy.num_replicas_in_sync} replicas for "
        f"{len(role.worker_hosts)} workers: each worker must train on one "
        "device (hide the others, e.g. CUDA_VISIBLE_DEVICES=0)")
  return strategy


def chief_value(strategy: tf.distribute.Strategy, value: int, is_chief: bool) -> int:
  """The chief's `value`, on every worker: an all-reduce of it and zeros."""
  local = tf.constant(value if is_chief else 0, tf.int64)
  return int(strategy.reduce(SUM, strategy.run(lambda: tf.identity(local)),
                             axis=None))


def fold_worker_into_dropout_seeds(model: keras.Model, worker: int) -> None:
  """Gives each worker its own dropout masks, the same again when it resumes.

  The Dropout layers' seed states are variables, mirrored like the weights:
  every worker would draw the chief's masks. Each worker adds its index
  (times a stride) to the seed half of each state, locally, keeping the
  shared step counter half; worker 0 keeps the single process's masks.
  Called after a restore, which brings back the chief's states.
  """
  for layer in model.layers:
    if isinstance(layer, keras.layers.Dropout):
      state = layer.seed_generator.state
      seed, counter = (int(x) for x in state.numpy())
      state.assign([(seed + worker * _WORKER_SEED_STRIDE) % 2**31, counter])


def leave_after_the_chief(strategy: tf.distribute.Strategy, role: cluster.Role) -> None:
  """Waits for the chief to write everything, and another worker for it to end.

  The chief's coordination service aborts (and logs the lost task) when a
  worker stops its heartbeats while the chief still runs; a worker that
  outlives the chief logs the lost service instead (on stderr, from C++),
  so it says nothing more once training is over.
  """
  chief_value(strategy, 0, role.is_chief)  # a barrier: every worker is here
  if role.is_chief:
    return
  sys.stderr.flush()
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  os.close(devnull)
  deadline = time.monotonic() + role.timeout
  while cluster.reachable(role.worker_hosts[0]) and time.monotonic() < deadline:
    time.sleep(0.1)


def worker_dataset(data_set: input_data.DataSet, hparams: hp.HParams,
                   workers: int, worker: int, initial_epoch: int) -> tf.data.Dataset:
  """This worker's shard of each global batch of train.make_dataset.

  The global batches are the single process's (drawn from the seed and the
  epoch); worker i keeps rows [i * B/K, (i + 1) * B/K) of each. A plain
  dataset, passed to strategy.run as this worker's one replica's input:
  strategy.distribute_datasets_from_function would wrap it in a
  multi-device iterator whose own tf.data autotuner (train.make_dataset
  turns ours off) held the process for up to a minute at exit.
  """
  rows = hparams.batch_size // workers
  first = worker * rows
  return train.make_dataset(
      data_set, hparams.batch_size, hparams.seed, hparams.training_epochs,
      initial_epoch).map(lambda x, y: (x[first:first + rows], y[first:first + rows]))


def make_train_epoch(strategy: tf.distribute.Strategy, model: keras.Model,
                     global_batch_size: int):
  """`steps` synchronous steps in one call; returns each step's global mean cost.

  One call per step would spend most of its time in Python and dispatch
  (about 6x slower here), as fit's steps_per_execution avoids.
  """
  def replica_step(images, labels):
    with tf.GradientTape() as tape:
      logits = model(images, training=True)
      # The compiled loss object's per-example costs, over the GLOBAL batch.
      per_example = model.loss.call(labels, logits)
      loss = tf.nn.compute_average_loss(per_example,
                                        global_batch_size=global_batch_size)
    gradients = tape.gradient(loss, model.trainable_variables)
    # Keras' optimizer all-reduces (sums) the gradients, then updates.
    model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    return loss

  @tf.function
  def train_epoch(batches, steps):
    costs = tf.TensorArray(tf.float32, size=steps)
    for step in tf.range(steps):
      cost = strategy.reduce(SUM, strategy.run(replica_step, args=next(batches)),
                             axis=None)
      costs = costs.write(step, cost)
    return costs.stack()
  return train_epoch


def check_outputs(save_path, logdir) -> None:
  if save_path:
    checkpoints.check_keras_path(save_path, "--save_path")
  if logdir:
    files.writable_directory(logdir, "--logdir")


def run_task(role: cluster.Role, hparams: hp.HParams,
             data_sets: input_data.Datasets, save_path: Optional[str] = None,
             checkpoint_dir: Optional[str] = None, logdir: Optional[str] = None,
             export_target: Optional[serving.ExportTarget] = None,
             print_fn=print) -> train.TrainingResult:
  """Trains as worker `role.index` of the cluster; the chief prints legacy's lines.

  Every worker must be started with the same flags. With `checkpoint_dir`
  (a directory every worker can read), all resume from its last checkpoint
  and the chief saves one at every epoch end.
  """
  chief = role.is_chief
  workers = len(role.worker_hosts)
  if hparams.batch_size % workers:
    raise errors.UserError(f"--batch_size {hparams.batch_size} must be a "
                           f"multiple of the {workers} workers: each takes "
                           "an equal shard of each batch")
  # The chief checks the outputs and takes the seed a checkpoint_dir keeps.
  if chief:
    check_outputs(save_path, logdir)
    hparams = checkpoints.prepare(checkpoint_dir, hparams)
  strategy = join_cluster(role)
  seed = hparams.seed if hparams.seed is not None else np.random.randint(2**31)
  hparams = dataclasses.replace(hparams, seed=chief_value(strategy, seed, chief))

  # Build the single process's model in the strategy's scope: its
  # variables are mirrored, their initial values the chief's.
  train_set = data_sets.train
  steps = train_set.num_examples // hparams.batch_size
  with strategy.scope():
    model = train.build_model(hparams, steps)  # its optimizer's slots too
  # Outside the scope: a string variable cannot be mirrored (broadcast).
  checkpointer = (checkpoints.Checkpoints(checkpoint_dir, model)
                  if checkpoint_dir else None)
  state = checkpoints.resume(checkpointer, hparams)
  fold_worker_into_dropout_seeds(model, role.index)
  scalars = summaries.Summaries(logdir if chief else None, state,
                                hparams.training_epochs, resumed=state.epoch > 0)
  train_epoch = make_train_epoch(strategy, model, hparams.batch_size)
  batches = iter(worker_dataset(train_set, hparams, workers, role.index,
                                state.epoch))

  # The training loop: one synchronous step per global batch, an epoch's
  # steps in one call.
  for epoch in range(state.epoch + 1, hparams.training_epochs + 1):
    try:
      costs = train_epoch(batches, tf.constant(steps)).numpy()
    except (tf.errors.UnavailableError, tf.errors.AbortedError) as e:
      raise cluster.lost_task_error(role, e) from None
    if not np.all(np.isfinite(costs)):
      raise errors.NonFiniteCostError(epoch, int(np.argmin(np.isfinite(costs))) + 1)
    avg_cost = sum(float(c) / steps for c in costs)
    state = TrainingState(epoch, state.epoch_costs + [avg_cost])
    if chief:
      print_fn(console.epoch_line(epoch, avg_cost))
      if checkpointer:
        checkpointer.save(state)
      scalars.write_cost(epoch, avg_cost)

  # Evaluate on the whole test set; the chief reports and writes the model.
  accuracy = train.test_accuracy(model, data_sets.test)
  if chief:
    print_fn(console.accuracy_line(accuracy))
    scalars.write_final_accuracy(accuracy)
    scalars.close()
    if save_path:
      checkpoints.save_model(model, save_path)
    if export_target:
      export.export(model, export_target)
  leave_after_the_chief(strategy, role)
  return train.TrainingResult(state.epoch_costs, accuracy, train.model_weights(model))
