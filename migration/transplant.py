"""Moving weights and optimizer state between a legacy graph and a Keras model.

The parity tests give both ports the same weights and compare what each
computes from them (after keras' integration_tests/numerical_test.py:
one builder per side, weights transplanted, compared stage by stage).
Values travel under legacy's names (names.py translates).
"""

from typing import Dict, Iterable

import numpy as np
import tensorflow as tf

from migration import names

v1 = tf.compat.v1


# ---------------------------------------------------------------- Keras side


def keras_variable(model, name: str):
  """The Keras variable for a legacy name, e.g. "hidden1/weights"."""
  layer, attribute = names.keras_name(name).split("/")
  return getattr(model.get_layer(layer), attribute)


def keras_weights(model) -> Dict[str, np.ndarray]:
  """The model's trainable values under their legacy names."""
  return {names.legacy_name(v.path): v.numpy() for v in model.trainable_variables}


def set_keras_weights(model, weights: Dict[str, np.ndarray]) -> None:
  """Assigns legacy-named `weights` to the model; every variable exactly once."""
  expected = {names.legacy_name(v.path) for v in model.trainable_variables}
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


def legacy_values(sess, variable_names: Iterable[str]) -> Dict[str, np.ndarray]:
  """The current values of the named variables of `sess`'s graph."""
  variables = legacy_variables(sess.graph)
  variable_names = list(variable_names)
  return dict(zip(variable_names, sess.run([variables[n] for n in variable_names])))


def set_legacy_weights(sess, weights: Dict[str, np.ndarray]) -> None:
  """Assigns legacy-named `weights` to the trainable variables of `sess`'s graph."""
  trainable = {v.op.name
               for v in sess.graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)}
  assert set(weights) == trainable, (sorted(weights), sorted(trainable))
  set_legacy_values(sess, weights)


def set_legacy_values(sess, values: Dict[str, np.ndarray]) -> None:
  """Assigns `values` to the global variables of `sess`'s graph they name."""
  graph = sess.graph
  variables = legacy_variables(graph)
  with graph.as_default():
    feeds, assigns = {}, []
    for name, value in values.items():
      variable = variables[name]
      placeholder = v1.placeholder(variable.dtype.base_dtype, variable.shape)
      feeds[placeholder] = value
      assigns.append(variable.assign(placeholder))
  sess.run(assigns, feed_dict=feeds)
