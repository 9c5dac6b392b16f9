"""TF1 variable names <-> Keras variable paths: the one place that translates.

Legacy names a layer's variables by name scope and variable, as TF1's
tutorial mnist.py does ("hidden1/weights", "hidden1/biases"); Keras by layer
and attribute ("hidden1/kernel", "hidden1/bias"), and a Keras variable's
path starts with the model's name ("mlp/hidden1/kernel"). The layer names
are common.hparams.layer_names, the same in both ports.
"""

from typing import Dict, Sequence

from common import hparams as hp

# A legacy layer's variable -> the Keras Dense layer's variable.
KERAS_NAMES = {"weights": "kernel", "biases": "bias"}
LEGACY_NAMES = {keras_name: legacy for legacy, keras_name in KERAS_NAMES.items()}
# TF1 AdamOptimizer's slots of a variable, "hidden1/weights/Adam" (m) and
# "hidden1/weights/Adam_1" (v) -> Keras Adam's, named after the variable's
# path: "adam/mlp_hidden1_kernel_momentum" and "..._velocity".
KERAS_ADAM_SLOTS = {"Adam": "momentum", "Adam_1": "velocity"}


def keras_name(legacy_name: str) -> str:
  """"hidden1/weights" -> "hidden1/kernel"."""
  layer, variable = legacy_name.split("/")
  return f"{layer}/{KERAS_NAMES[variable]}"


def legacy_name(keras_path: str) -> str:
  """"mlp/hidden1/kernel" (or "hidden1/kernel") -> "hidden1/weights"."""
  layer, attribute = keras_path.split("/")[-2:]
  return f"{layer}/{LEGACY_NAMES[attribute]}"


def adam_slot_names(legacy_name: str):
  """"hidden1/weights" -> ("hidden1/weights/Adam", "hidden1/weights/Adam_1")."""
  return tuple(f"{legacy_name}/{slot}" for slot in KERAS_ADAM_SLOTS)


def name_map(hidden_units: Sequence[int]) -> Dict[str, str]:
  """{legacy variable name: Keras variable path without the model's name}."""
  return {f"{layer}/{legacy}": f"{layer}/{keras}"
          for layer in hp.layer_names(len(hidden_units))
          for legacy, keras in KERAS_NAMES.items()}
