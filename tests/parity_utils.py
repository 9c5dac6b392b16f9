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
import dataclasses
import importlib
import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from common import console
from common import hparams as hp
from common import input_data
from experiments import runner

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


# ---------------------------------------------------------------- whole runs

# Whole runs go to experiments.runner's worker processes, one per core, each
# on one TensorFlow thread (runner.py says why).
fresh_data_sets = runner.fresh_data_sets
worker_pool = runner.worker_pool
cpu_count = runner.cpu_count


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
