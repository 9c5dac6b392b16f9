"""Data-parallel training the TF1 way: parameter servers, ClusterSpec, Server.

Every task is this same program (legacy/cluster.py gives it its place). A
`ps` task holds the variables (tf.compat.v1.train.replica_device_setter
puts them there, optimizer slots and the step counter included) and serves
until its workers say they are done. Two replication modes:

  asynchronous (the default; TF1's between-graph replication): each worker
    builds the single process's graph, trains on its own shard of the
    training set (worker i: examples i, i+K, ...) with its own feed_dict
    steps, and updates the parameters on its own. An epoch is one pass of
    every worker over its shard: 55,000 examples across the cluster. The
    chief's `Epoch:` line is the mean cost of its own steps.
  synchronous (--sync_replicas; in-graph replication, as TF1's multi-device
    examples did): the chief is the one client. It builds a tower per
    worker task; tower i computes the gradient of rows i*B/K .. (i+1)*B/K-1
    of the single process's batch, its loss the summed cost over the global
    batch size; the towers' gradients are summed and applied on the ps.
    So K workers compute one process's steps, to float32 rounding, and the
    printed cost is the global batch's mean (tests/test_cluster.py).
    SyncReplicasOptimizer, TF1's between-graph way, is not used: it hangs
    at the end of training (tensorflow#2386, #13854).

Worker 0 is the chief: it initialises the variables (or restores the last
checkpoint of --checkpoint_dir with the project's own saver, at epoch ends,
not MonitoredTrainingSession's timer), prints, writes summaries, --save_path
and --export_dir. Name for name with modern/distributed.py.
"""

import contextlib
import dataclasses
import sys
import time
from typing import List, Optional

import numpy as np
import tensorflow as tf

from common import cluster
from common import console
from common import errors
from common import files
from common import hparams as hp
from common import input_data
from common import serving
from common.checkpoint_dir import TrainingState
from legacy import checkpoints
from legacy import export
from legacy import mlp
from legacy import summaries
from legacy import train

v1 = tf.compat.v1

# Added to the graph seed once per worker index: each worker's dropout masks
# (and its shard's order) differ; worker 0 keeps the single process's.
_WORKER_SEED_STRIDE = 1_000_003
_STEP_ATTEMPTS = 3  # run_step: tries of a step TensorFlow aborted


def start_server(role: cluster.Role) -> v1.train.Server:
  """This task's tf.train.Server, in the ClusterSpec of the host lists."""
  cluster.check_address_free(role)
  spec = v1.train.ClusterSpec(role.cluster_dict())
  return v1.train.Server(spec, job_name=role.job, task_index=role.index)


def servers_only(role: cluster.Role) -> List[cluster.Role]:
  """The tasks that only serve (the ps; in sync mode the workers but 0)."""
  tasks = [("ps", i) for i in range(len(role.ps_hosts))]
  if role.sync:
    tasks += [("worker", i) for i in range(1, len(role.worker_hosts))]
  return [dataclasses.replace(role, job=job, index=i) for job, i in tasks]


def clients(role: cluster.Role) -> List[str]:
  """The addresses of the tasks that run training steps."""
  return list(role.worker_hosts[:1] if role.sync else role.worker_hosts)


def done_queue(task: cluster.Role, capacity: int) -> tf.queue.FIFOQueue:
  """The queue, on `task`, where each client puts one token when it is done."""
  with v1.device(f"/job:{task.job}/task:{task.index}"):
    return tf.queue.FIFOQueue(capacity, tf.int32,
                              shared_name=f"done_{task.job}{task.index}")


def serve_until_done(role: cluster.Role, server: v1.train.Server) -> None:
  """Serves until every client said it is done, or none answered for role.timeout.

  server.join() would never return: a ps of TF1's how-to outlives its cluster.
  """
  expected = len(clients(role))
  with tf.Graph().as_default():
    dequeue = done_queue(role, expected).dequeue()
    config = v1.ConfigProto(device_filters=[f"/job:{role.job}/task:{role.index}"])
    with v1.Session(server.target, config=config) as sess:
      done, last_seen = 0, time.monotonic()
      while done < expected:
        try:
          sess.run(dequeue, options=v1.RunOptions(timeout_in_ms=1000))
          done += 1
        except tf.errors.DeadlineExceededError:
          pass
        if any(cluster.reachable(address) for address in clients(role)):
          last_seen = time.monotonic()
        elif time.monotonic() - last_seen > role.timeout:
          raise errors.UserError(
              f"{role.name}: no worker has answered for {role.timeout:g} s "
              "(--cluster_timeout); stopping")


def worker_seed(hparams: hp.HParams, worker: int) -> hp.HParams:
  if hparams.seed is None or worker == 0:
    return hparams
  return dataclasses.replace(
      hparams, seed=(hparams.seed + worker * _WORKER_SEED_STRIDE) % 2**31)


def tower_loss(logits, labels, global_batch_size):
  """A tower's share of the global batch's mean cost: its summed cost / B."""
  return tf.reduce_sum(v1.nn.softmax_cross_entropy_with_logits_v2(
      labels=labels, logits=logits)) / global_batch_size


def build_towers(hparams: hp.HParams, variable_device, worker_devices) -> train.Model:
  """In-graph replication: one tower per device, gradients summed, one update.

  The placeholders and an evaluation tower over the whole batch come first,
  as in train.build_model, so the variables get the single process's
  initial values; each training tower takes its rows of the batch and
  reuses those variables (a variable creator returning them in order).
  """
  graph = tf.Graph()
  with graph.as_default():
    if hparams.seed is not None:
      v1.set_random_seed(hparams.seed)
    created = []

    def record(next_creator, **kwargs):
      created.append(next_creator(**kwargs))
      return created[-1]
    with v1.device(variable_device), tf.variable_creator_scope(record):
      images, labels = train.placeholder_inputs()
      keep_prob = (v1.placeholder(tf.float32, [], name="keep_prob")
                   if hparams.keep_prob < 1 else None)
      logits = mlp.inference(images, hparams.hidden_units, hparams.activation,
                             hparams.init, hparams.bias_init, keep_prob,
                             hparams.dropout_layers)
      global_step = v1.train.get_or_create_global_step()
    optimizer = mlp.make_optimizer(hparams.optimizer, hparams.learning_rate,
                                   hparams.beta1, hparams.beta2, hparams.epsilon)
    variables = created[:-1]  # the global step is no parameter
    batch = tf.shape(images)[0]
    rows = batch // len(worker_devices)
    losses, tower_gradients = [], []
    for i, device in enumerate(worker_devices):
      reuse = iter(variables)
      with v1.device(device), tf.name_scope(f"tower{i}"), \
          tf.variable_creator_scope(lambda next_creator, **kwargs: next(reuse)):
        tower_logits = mlp.inference(
            images[i * rows:(i + 1) * rows], hparams.hidden_units,
            hparams.activation, hparams.init, hparams.bias_init, keep_prob,
            hparams.dropout_layers)
        losses.append(tower_loss(tower_logits, labels[i * rows:(i + 1) * rows],
                                 tf.cast(batch, tf.float32)))
        tower_gradients.append(optimizer.compute_gradients(losses[-1], variables))
    with v1.device(variable_device):
      cost = tf.add_n(losses, name="cost")
      gradients = [tf.add_n([g[k][0] for g in tower_gradients])
                   for k in range(len(variables))]
      train_op = optimizer.apply_gradients(zip(gradients, variables),
                                           global_step=global_step)
      accuracy = mlp.evaluation(logits, labels)
      init_op = v1.global_variables_initializer()
  return train.Model(graph, images, labels, keep_prob, logits, cost, train_op,
                     accuracy, init_op)


@dataclasses.dataclass
class ClusterGraph:
  """A worker's graph: the model and what the cluster adds to it."""
  model: train.Model
  checkpointer: Optional[checkpoints.Checkpoints]
  model_saver: Optional[v1.train.Saver]  # --save_path, built before finalizing
  chief_ready: tf.Variable  # set once the chief initialised or restored
  mark_ready: tf.Operation
  workers_finished: tf.Variable  # counted up by the other workers at their end
  finish: tf.Operation
  signal_done: tf.Operation  # a token to each serving task's done_queue


def build_graph(role: cluster.Role, hparams: hp.HParams,
                checkpoint_dir: Optional[str], save_path: Optional[str]) -> ClusterGraph:
  """The graph of worker `role.index`, its variables on the ps tasks.

  Built whole before MonitoredTrainingSession finalizes it: the savers and
  the cluster's signals too. Variables go to the ps (round robin), every
  other op to this worker (replica_device_setter).
  """
  spec = v1.train.ClusterSpec(role.cluster_dict())
  device = v1.train.replica_device_setter(
      cluster=spec, worker_device=f"/job:worker/task:{role.index}")
  if role.sync:
    model = build_towers(hparams, device, [f"/job:worker/task:{i}"
                                           for i in range(len(role.worker_hosts))])
  else:
    model = train.build_model(worker_seed(hparams, role.index), device)
  with model.graph.as_default(), v1.device(device):
    checkpointer = (checkpoints.Checkpoints(checkpoint_dir, model.graph)
                    if checkpoint_dir else None)
    model_saver = v1.train.Saver() if save_path else None
    chief_ready = tf.Variable(False, trainable=False, name="chief_ready")
    finished = tf.Variable(0, trainable=False, name="workers_finished")
    signal_done = tf.group([done_queue(task, len(clients(role))).enqueue(1)
                            for task in servers_only(role)])
    return ClusterGraph(model, checkpointer, model_saver, chief_ready,
                        chief_ready.assign(True), finished,
                        finished.assign_add(1), signal_done)


def poll(what: str, role: cluster.Role, ready, watched: List[str]) -> None:
  """Waits until ready() is true; UserError once none of `watched` answered
  for role.timeout seconds."""
  last_seen = time.monotonic()
  while not ready():
    if any(cluster.reachable(address) for address in watched):
      last_seen = time.monotonic()
    elif time.monotonic() - last_seen > role.timeout:
      raise errors.UserError(f"{role.name}: {what} did not answer for "
                             f"{role.timeout:g} s (--cluster_timeout); stopping")
    time.sleep(0.25)


def wait_for_chief(role: cluster.Role, server, graph: ClusterGraph, config) -> None:
  """Until the chief has initialised or restored the variables.

  MonitoredTrainingSession waits for that too, but looks only every 30 s.
  """
  with v1.Session(server.target, graph=graph.model.graph, config=config) as sess:
    def ready():
      try:
        return bool(sess.run(graph.chief_ready))
      except tf.errors.FailedPreconditionError:  # not initialised yet
        return False
    poll("the chief", role, ready, role.worker_hosts[:1])


@contextlib.contextmanager
def cluster_session(role: cluster.Role, server, graph: ClusterGraph):
  """A MonitoredTrainingSession on this task's server; yields its raw Session.

  The chief initialises the variables; the others wait for it. No hooks:
  checkpoints, summaries and the stop are the loop's, at epoch ends.
  """
  # An asynchronous worker talks to the ps only, not to the other workers.
  config = v1.ConfigProto(device_filters=(
      None if role.sync else ["/job:ps", f"/job:worker/task:{role.index}"]))
  if not role.is_chief:
    wait_for_chief(role, server, graph, config)
  with graph.model.graph.as_default(), v1.train.MonitoredTrainingSession(
      master=server.target, is_chief=role.is_chief, config=config,
      save_checkpoint_secs=None, save_summaries_steps=None,
      save_summaries_secs=None, log_step_count_steps=0) as session:
    try:
      yield session.run_step_fn(lambda step_context: step_context.session)
    except (tf.errors.UnavailableError, tf.errors.AbortedError) as e:
      # Closing a session whose tasks are gone waits for them forever (the
      # session's exit, TF_CloseSession): the process ends here instead.
      errors.exit_now(cluster.lost_task_error(role, e))


def worker_data(train_set: input_data.DataSet, role: cluster.Role,
                hparams: hp.HParams) -> input_data.DataSet:
  """The examples this worker trains on: all (sync), or its shard i::K."""
  if role.sync:
    return train_set
  workers = len(role.worker_hosts)
  return input_data.DataSet(train_set.images[role.index::workers],
                            train_set.labels[role.index::workers],
                            seed=worker_seed(hparams, role.index).seed)


def resume(sess, role: cluster.Role, graph: ClusterGraph,
           train_set: input_data.DataSet, hparams: hp.HParams):
  """The chief restores the last checkpoint (checkpoints.resume) and says it
  is ready; another worker reads the epoch to go on from."""
  if role.is_chief:
    # A tower's dropout ops drew its rows of each batch only.
    rows = hparams.batch_size // len(role.worker_hosts) if role.sync else None
    state = checkpoints.resume(sess, graph.checkpointer, graph.model, train_set,
                               hparams, dropout_rows=rows)
    sess.run(graph.mark_ready)
    return state
  saved = sess.run(graph.checkpointer.state) if graph.checkpointer else b""
  return TrainingState.from_json(saved) if saved else TrainingState()


def run_worker(role: cluster.Role, server, hparams: hp.HParams,
               data_sets: input_data.Datasets, save_path: Optional[str] = None,
               checkpoint_dir: Optional[str] = None, logdir: Optional[str] = None,
               export_target: Optional[serving.ExportTarget] = None,
               print_fn=print) -> train.TrainingResult:
  """Trains as worker `role.index`; the chief prints the original lines."""
  # The chief checks the outputs and takes the seed a checkpoint_dir keeps.
  chief = role.is_chief
  if chief:
    if logdir:
      files.writable_directory(logdir, "--logdir")
    hparams = checkpoints.prepare(checkpoint_dir, hparams)

  # Build the whole graph, variables on the ps tasks.
  graph = build_graph(role, hparams, checkpoint_dir, save_path)
  model = graph.model
  train_set = worker_data(data_sets.train, role, hparams)
  total_batch = train_set.num_examples // hparams.batch_size

  with cluster_session(role, server, graph) as sess:
    state = resume(sess, role, graph, train_set, hparams)
    scalars = summaries.Summaries(logdir if chief else None, model.graph, state,
                                  hparams.training_epochs, resumed=state.epoch > 0)
    try:
      # The training loop: one feed_dict step per batch (per global batch
      # in sync mode: the towers split it).
      for epoch in range(state.epoch + 1, hparams.training_epochs + 1):
        avg_cost = 0.0
        for step in range(1, total_batch + 1):
          batch_xs, batch_ys = train_set.next_batch(hparams.batch_size)
          feed = train.fill_feed_dict(model, batch_xs, batch_ys, hparams.keep_prob)
          _, c = run_step(sess, role, [model.train_op, model.cost], feed)
          if not np.isfinite(c):
            raise errors.NonFiniteCostError(epoch, step)
          avg_cost += c / total_batch
        state = checkpoints.next_state(state, avg_cost,
                                       train_set if graph.checkpointer else None)
        if chief:
          print_fn(console.epoch_line(epoch, avg_cost))
          if graph.checkpointer:
            graph.checkpointer.save(sess, state)
          scalars.write_cost(epoch, avg_cost)
      finish_training(sess, role, graph)

      # Evaluate the parameters every worker trained, without dropout.
      test = data_sets.test
      accuracy = sess.run(model.accuracy, feed_dict=train.fill_feed_dict(
          model, test.images, test.labels))
      if chief:
        print_fn(console.accuracy_line(accuracy))
        scalars.write_final_accuracy(accuracy)
    finally:
      scalars.close()
    if chief and save_path:
      graph.model_saver.save(sess, save_path)
    weights = train.model_weights(sess, model)
    sess.run(graph.signal_done)
  if chief and export_target:
    export.export(weights, hparams, export_target)
  return train.TrainingResult(state.epoch_costs, float(accuracy), weights)


def run_step(sess, role: cluster.Role, fetches, feed_dict):
  """sess.run(fetches, feed_dict), run again when TensorFlow aborted it.

  MonitoredTrainingSession's own run recovers from it too, with a new
  session (_RecoverableSession): an AbortedError may be, in TF1's words,
  "a gRPC failure caused by high memory or network bandwidth usage in the
  parameter servers". The raw session is kept: a new one would have the
  chief initialise the variables again. An asynchronous step that had
  updated some variables is one more stale update. After _STEP_ATTEMPTS
  the error ends the cluster (cluster_session).
  """
  for attempt in range(1, _STEP_ATTEMPTS + 1):
    try:
      return sess.run(fetches, feed_dict=feed_dict)
    except tf.errors.AbortedError as e:
      if attempt == _STEP_ATTEMPTS:
        raise
      print(f"{role.name}: TensorFlow aborted a step ({errors.first_line(e)}); "
            f"running it again ({attempt} of {_STEP_ATTEMPTS - 1})",
            file=sys.stderr, flush=True)


def finish_training(sess, role: cluster.Role, graph: ClusterGraph) -> None:
  """Another worker counts itself finished; the chief waits for them all."""
  others = len(clients(role)) - 1
  if not role.is_chief:
    sess.run(graph.finish)
  elif others:
    poll("the other workers", role,
         lambda: sess.run(graph.workers_finished) >= others, clients(role)[1:])


def run_task(role: cluster.Role, hparams: hp.HParams,
             data_sets: Optional[input_data.Datasets], **outputs
             ) -> Optional[train.TrainingResult]:
  """Runs task `role` of the cluster: a server until the end, or a worker.

  `outputs` are run_worker's (save_path, checkpoint_dir, ...).
  """
  workers = len(role.worker_hosts)
  if role.sync and hparams.batch_size % workers:
    raise errors.UserError(f"--batch_size {hparams.batch_size} must be a "
                           f"multiple of the {workers} workers: each tower "
                           "takes an equal share of each batch")
  server = start_server(role)
  if role in servers_only(role):
    serve_until_done(role, server)
    return None
  cluster.wait_reachable(role, cluster.JOBS if role.sync else ("ps",))
  return run_worker(role, server, hparams, data_sets, **outputs)
