"""Helpers shared by the parity tests: moving weights between the two ports,
reading optimizer state, and training many whole runs at once for outcome
parity.

The two ports name the same variables differently: legacy by name scope and
variable ("hidden1/weights", "hidden1/biases"), Keras by layer and attribute
(layer "hidden1", its kernel and bias, path "mlp/hidden1/kernel"). This
module is the one place that translates between them. Tests may import both
ports; legacy/ and modern/ never import each other.
"""

import concurrent.futures
import contextlib
import dataclasses
import importlib
import multiprocessing
import os
import sys
import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from common import console
from common import hparams as hp
from common import input_data

# First, so that TensorFlow's start-up noise stays off the console also in
# the worker processes, which import this module before anything else.
tf = console.import_tensorflow()
import keras  # pylint: disable=g-import-not-at-top,wrong-import-position

v1 = tf.compat.v1

# Legacy variable name (last part) -> Keras Dense attribute.
LEGACY_TO_KERAS = {"weights": "kernel", "biases": "bias"}
KERAS_TO_LEGACY = {k: l for l, k in LEGACY_TO_KERAS.items()}


def silent(*unused_args, **unused_kwargs):
  """A print_fn that prints nothing."""


# ---------------------------------------------------------------- names


def keras_name(legacy_name: str) -> str:
  """"hidden1/weights" -> "hidden1/kernel"."""
  layer, variable = legacy_name.split("/")
  return f"{layer}/{LEGACY_TO_KERAS[variable]}"


def legacy_name(keras_path: str) -> str:
  """"mlp/hidden1/kernel" (or "hidden1/kernel") -> "hidden1/weights"."""
  layer, attribute = keras_path.split("/")[-2:]
  return f"{layer}/{KERAS_TO_LEGACY[attribute]}"


# ---------------------------------------------------------------- Keras side


def keras_variable(model, name: str):
  """The Keras variable for a legacy name, e.g. "hidden1/weights"."""
  layer, attribute = keras_name(name).split("/")
  return getattr(model.get_layer(layer), attribute)


def keras_weights(model) -> Dict[str, np.ndarray]:
  """The model's trainable values under their legacy names."""
  return {legacy_name(v.path): v.numpy() for v in model.trainable_variables}


def set_keras_weights(model, weights: Dict[str, np.ndarray]) -> None:
  """Assigns legacy-named `weights` to the model; every variable exactly once."""
  expected = {legacy_name(v.path) for v in model.trainable_variables}
  assert set(weights) == expected, (sorted(weights), sorted(expected))
  for name, value in weights.items():
    keras_variable(model, name).assign(value)


def keras_adam_slots(optimizer, variable):
  """Keras Adam's (m, v) slot variables for one model variable.

  Keras 3 names them after the variable's path: "mlp/hidden1/kernel" ->
  "adam/mlp_hidden1_kernel_momentum" and "..._velocity".
  """
  stem = variable.path.replace("/", "_")
  by_suffix = {v.path.split("/")[-1]: v for v in optimizer.variables}
  return by_suffix[f"{stem}_momentum"], by_suffix[f"{stem}_velocity"]


# ---------------------------------------------------------------- legacy side


def legacy_variables(graph: tf.Graph) -> Dict[str, tf.Variable]:
  """Every global variable of a legacy graph by name, e.g. "beta1_power"."""
  return {v.op.name: v
          for v in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)}


def legacy_values(sess, names: Iterable[str]) -> Dict[str, np.ndarray]:
  """The current values of the named variables of `sess`'s graph."""
  variables = legacy_variables(sess.graph)
  names = list(names)
  return dict(zip(names, sess.run([variables[n] for n in names])))


def set_legacy_weights(sess, weights: Dict[str, np.ndarray]) -> None:
  """Assigns legacy-named `weights` to the trainable variables of `sess`'s graph."""
  graph = sess.graph
  trainable = {v.op.name: v
               for v in graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)}
  assert set(weights) == set(trainable), (sorted(weights), sorted(trainable))
  with graph.as_default():
    feeds, assigns = {}, []
    for name, variable in trainable.items():
      value = v1.placeholder(variable.dtype.base_dtype, variable.shape)
      feeds[value] = weights[name]
      assigns.append(variable.assign(value))
  sess.run(assigns, feed_dict=feeds)


# ---------------------------------------------------------------- data


def fresh_data_sets(data_sets: input_data.Datasets,
                    seed: int) -> input_data.Datasets:
  """The same arrays with new batch generators: each training run starts
  from the same batch order, whatever ran before (no image is copied)."""
  # The same seeding as input_data.read_data_sets(..., seed=seed).
  train_seed, validation_seed, test_seed = np.random.SeedSequence(seed).spawn(3)
  def rewrap(data_set, data_seed):
    return input_data.DataSet(data_set.images, data_set.labels, seed=data_seed)
  return input_data.Datasets(train=rewrap(data_sets.train, train_seed),
                             validation=rewrap(data_sets.validation, validation_seed),
                             test=rewrap(data_sets.test, test_seed))


# ---------------------------------------------------------------- whole runs

# Whole runs go to worker processes, one per core, each limited to one
# TensorFlow thread. The layers are too small (batch 100) for intra-op
# threads to pay: measured here (2 cores, hw05, 2 epochs), a run took as
# long on one thread as on two (legacy 8.3 s, modern 13-14 s), and two
# single-threaded runs side by side keep both cores busy. A worker imports
# TensorFlow once and trains run after run (a fresh process per run costs
# 7-10 s of start-up each time). TensorFlow reads these variables once, at
# start-up (process_util.cc); v1 Sessions without a ConfigProto and Keras
# both use the thread pools they size.
SINGLE_THREAD_ENV = {"TF_NUM_INTRAOP_THREADS": "1",
                     "TF_NUM_INTEROP_THREADS": "1",
                     "OMP_NUM_THREADS": "1"}


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of `port` with `script`'s defaults and `seed`."""
  port: str    # "legacy" or "modern"
  script: str  # "hw04" or "hw05"
  seed: int


@dataclasses.dataclass(frozen=True)
class Outcome:
  run: Run
  accuracy: float
  epoch_costs: Tuple[float, ...]
  seconds: float


def train_once(run: Run, data_dir: str, training_epochs: Optional[int] = None,
               train_limit: Optional[int] = None) -> Outcome:
  """One run, in this process, as `python -m {port}.{script} --seed N` does it
  (common/cli.py): the script's default hyper-parameters, the data seeded
  with the run's seed, the port's `run_training`."""
  changes = {"seed": run.seed, "train_limit": train_limit}
  if training_epochs:
    changes["training_epochs"] = training_epochs
  hparams = dataclasses.replace(hp.SCRIPTS[run.script], **changes)
  train = importlib.import_module(f"{run.port}.train")
  keras.backend.clear_session()  # as in a process of its own
  start = time.monotonic()
  data_sets = input_data.read_data_sets(data_dir, one_hot=True,
                                        seed=hparams.seed,
                                        train_limit=hparams.train_limit)
  result = train.run_training(hparams, data_sets, print_fn=silent)
  return Outcome(run, float(result.accuracy),
                 tuple(float(c) for c in result.epoch_costs),
                 time.monotonic() - start)


def _start_worker():
  # The programs' epoch lines would interleave on the console: the parent
  # reports each outcome instead.
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, sys.stdout.fileno())
  os.close(devnull)


@contextlib.contextmanager
def _environment(changes: Dict[str, str]):
  saved = {name: os.environ.get(name) for name in changes}
  os.environ.update(changes)
  try:
    yield
  finally:
    for name, value in saved.items():
      if value is None:
        del os.environ[name]
      else:
        os.environ[name] = value


@contextlib.contextmanager
def worker_pool(workers: int):
  """`workers` processes, each training on one TensorFlow thread."""
  # "spawn": a fork of a process that already runs TensorFlow is unsafe.
  # Workers start on the first submit and inherit the environment then,
  # before they import TensorFlow; this process' own TensorFlow read it long
  # ago, and gets it back unchanged.
  context = multiprocessing.get_context("spawn")
  with _environment(SINGLE_THREAD_ENV), concurrent.futures.ProcessPoolExecutor(
      max_workers=workers, mp_context=context,
      initializer=_start_worker) as pool:
    yield pool


def train_many(pool, runs: List[Run], data_dir: str,
               training_epochs: Optional[int] = None,
               train_limit: Optional[int] = None,
               report: Callable[[Outcome], None] = silent) -> Dict[Run, Outcome]:
  """Trains `runs` in the worker pool; {run: outcome}.

  Runs are handed out in order as workers free up: put the longest first.
  `report` is called here as each run finishes (progress for minutes).
  """
  futures = [pool.submit(train_once, run, data_dir, training_epochs,
                         train_limit) for run in runs]
  outcomes = {}
  for future in concurrent.futures.as_completed(futures):
    outcome = future.result()
    report(outcome)
    outcomes[outcome.run] = outcome
  return outcomes


def cpu_count() -> int:
  """The cores this process may run on (not the machine's total)."""
  return len(os.sched_getaffinity(0))
