"""The seed's hyper-parameters, written down once for both ports.

hw04 and hw05 are one program with two sets of defaults (what the original
scripts' report says: docs/original-scripts.md): hw05 = hw04 + dropout +
Adam with the report's settings.

Three details are not recorded by the report and are reconstructions,
chosen by the study in report/ (`make report`; docs/study.md) as the
candidate that matches most of the numbers the report gives: weights
U(-1, 1), zero biases, hw04's learning rate 1.0, and dropout after all four
layers (logits included).
"""

import dataclasses
import math
import struct
from typing import Optional, Tuple

NUM_CLASSES = 10
IMAGE_PIXELS = 28 * 28
TRAIN_EXAMPLES = 55000  # MNIST's 60,000 less the first 5,000 (validation)
# An hw05 run below this test accuracy is counted as collapsed, as in the seed.
COLLAPSE_THRESHOLD = 0.9
# The seeds both ports take: Keras' set_random_seed stops at 2**32 - 1;
# TF1's graph seed would take more, but a seed must mean a run in each port.
SEED_MAX = 2**32 - 1
# The graphs compute in float32, and TensorFlow flushes float32 denormals
# to zero on the CPU: a value below the smallest normal float32 acts as 0.
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38


def as_float32(x: float) -> float:
  """`x` rounded to float32 as TensorFlow rounds it: inf beyond its range."""
  try:
    return struct.unpack("f", struct.pack("f", x))[0]
  except OverflowError:
    return math.copysign(math.inf, x)


def positive_float32(x: float) -> bool:
  """Whether `x` stays a positive number (not 0, not inf) in float32."""
  return x is not None and FLOAT32_TINY <= as_float32(x) <= FLOAT32_MAX


@dataclasses.dataclass(frozen=True)
class HParams:
  """Everything that defines one training run."""
  optimizer: str = "gd"              # "gd" or "adam"
  learning_rate: float = 1.0         # reconstruction: hw04's is not recorded
  training_epochs: int = 15
  batch_size: int = 100
  keep_prob: float = 1.0             # 1.0 builds no dropout at all
  # TF1 AdamOptimizer's own defaults; hw05 overrides them.
  beta1: float = 0.9
  beta2: float = 0.999
  epsilon: float = 1e-8
  hidden_units: Tuple[int, ...] = (256, 128, 256)
  activation: str = "sigmoid"
  init: str = "uniform:1.0"          # reconstruction: tf.random_uniform([n, m], -1., 1.)
  bias_init: str = "zeros"           # reconstruction: tf.zeros([m])
  dropout_layers: str = "all"        # reconstruction: "dropout on each layer"
  train_limit: Optional[int] = None  # first N training examples only
  seed: Optional[int] = None


SCRIPTS = {
    # DL_HW_04week.py: plain gradient descent, no dropout.
    "hw04": HParams(),
    # DL_HW_05week.py: the same MLP with dropout and the report's Adam.
    "hw05": HParams(optimizer="adam", learning_rate=0.9, beta1=0.6,
                    beta2=0.8, epsilon=0.1, keep_prob=0.7),
}

ACTIVATIONS = ("sigmoid", "relu", "tanh")
OPTIMIZERS = ("gd", "adam")
# Where dropout goes: after each hidden layer; on the input image too; or
# after all four weight layers, logits included.
DROPOUT_LAYERS = ("hidden", "input_hidden", "all")


def layer_sizes(hidden_units) -> tuple:
  """The widths from the image to the logits: (784, *hidden_units, 10)."""
  return (IMAGE_PIXELS, *hidden_units, NUM_CLASSES)


def layer_names(num_hidden: int):
  """hidden1, hidden2, ... then softmax_linear, as in TF1's tutorial mnist.py.

  The TF1 graph's name scopes and the Keras Dense layers share these
  names, so a checkpoint's variables map across by name.
  """
  return [f"hidden{i}" for i in range(1, num_hidden + 1)] + ["softmax_linear"]


@dataclasses.dataclass(frozen=True)
class InitSpec:
  """A parsed --init / --bias_init value: "uniform:L", "normal:S", "xavier" or "zeros"."""
  kind: str
  scale: float = 0.0


WEIGHT_INITS = ("uniform", "normal", "xavier", "zeros")
BIAS_INITS = ("uniform", "normal", "zeros")


def parse_init(spec: str, allowed: Tuple[str, ...] = WEIGHT_INITS) -> InitSpec:
  """Parses an initializer spec; raises ValueError with a readable message."""
  kind, _, value = spec.partition(":")
  if kind in allowed and kind in ("xavier", "zeros") and not value:
    return InitSpec(kind)
  if kind in allowed and kind in ("uniform", "normal"):
    try:
      scale = float(value)
    except ValueError:
      scale = math.nan
    if positive_float32(scale):
      return InitSpec(kind, scale)
  raise ValueError(f"{spec!r} is not an initializer: use "
                   + describe_inits(allowed))


def describe_inits(allowed: Tuple[str, ...]) -> str:
  forms = {"uniform": "uniform:LIMIT", "normal": "normal:STDDEV",
           "xavier": "xavier", "zeros": "zeros"}
  return (", ".join(forms[k] for k in allowed)
          + " (LIMIT, STDDEV > 0 and within float32's 1.2e-38..3.4e38)")


def parse_hidden_units(text: str) -> Tuple[int, ...]:
  """"256,128,256" -> (256, 128, 256); raises ValueError if malformed."""
  try:
    units = tuple(int(part) for part in text.split(","))
  except ValueError:
    units = ()
  if not units or min(units) < 1:
    raise ValueError(
        f"{text!r} is not a list of hidden layer sizes: use positive "
        "integers separated by commas, e.g. 256,128,256")
  return units
