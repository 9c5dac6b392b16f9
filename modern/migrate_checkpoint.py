"""Migrates a legacy TF1 checkpoint into a Keras .keras model.

  python -m modern.migrate_checkpoint --checkpoint /tmp/hw05
                                      --save_path /tmp/hw05.keras
                                      [--activation tanh]

Keras 3 cannot read a TF1 checkpoint, and a tf.compat.v1.train.Saver handed
Keras 3 variables writes and reads a useless single key. So the checkpoint is
read by variable name (tf.train.load_checkpoint), each name is mapped through
KERAS_NAMES to its Keras variable, and the value is assigned to it.

--checkpoint is the prefix a legacy run's --save_path wrote, or a directory
with a `checkpoint` state file (its latest checkpoint). The layer sizes come
from the variable shapes; the activation, which a checkpoint does not hold,
from --activation or the run's hparams.json beside it (a --checkpoint_dir
run keeps one; the two must agree), else sigmoid (the scripts'). The model
written is the
plain keras.Sequential that modern's --save_path writes (layers hidden1 ..
softmax_linear), without Dropout layers (they act only in training) and
without an optimizer: the checkpoint's optimizer slots are not migrated.
It loads with keras.saving.load_model(path, safe_mode=True), without this
project's code, and is written atomically: a failure leaves nothing behind.
"""

import os
from typing import Dict, Sequence

from absl import flags

from common import errors
from common import hparams as hp
from common import saved_models

FLAGS = flags.FLAGS

# A legacy layer's variable -> the Keras Dense layer's variable of the same
# layer name: TF1's tutorial mnist.py says weights and biases, Keras kernel
# and bias. hidden1/weights -> hidden1/kernel, ..., softmax_linear/biases ->
# softmax_linear/bias; nothing else in a checkpoint is migrated.
KERAS_NAMES = {"weights": "kernel", "biases": "bias"}


def name_map(hidden_units: Sequence[int]) -> Dict[str, str]:
  """{legacy variable name: Keras variable path without the model's name}."""
  return {f"{layer}/{legacy}": f"{layer}/{keras_name}"
          for layer in hp.layer_names(len(hidden_units))
          for legacy, keras_name in KERAS_NAMES.items()}


def build_model(checkpoint: saved_models.MlpCheckpoint):
  """The plain keras.Sequential of the checkpoint's MLP, holding its values.

  The layers are modern's own (mlp.inference, without dropout), wrapped as
  modern's --save_path wraps them, so that the file needs no project code.
  """
  import keras  # pylint: disable=g-import-not-at-top
  from modern import mlp  # pylint: disable=g-import-not-at-top
  # keep_prob 1 (the default): no Dropout layers.
  layers = mlp.inference(checkpoint.hidden_units, checkpoint.activation)
  model = keras.Sequential([keras.Input(shape=(hp.IMAGE_PIXELS,), name="X"),
                            *layers.layers], name=layers.name)
  # variable.path is unique, variable.name is only "kernel" or "bias".
  variables = {v.path.removeprefix(f"{model.name}/"): v for v in model.weights}
  mapping = name_map(checkpoint.hidden_units)
  if sorted(mapping.values()) != sorted(variables):  # none may keep its initial value
    raise RuntimeError(f"the name map {mapping} does not cover the model's "
                       f"variables {sorted(variables)}")
  for legacy_name, keras_path in mapping.items():
    variables[keras_path].assign(checkpoint.values[legacy_name])
  return model


def save_model(model, save_path: str) -> None:
  """Writes a .keras file atomically: a temporary name, renamed once complete."""
  if not save_path.endswith(".keras"):
    raise errors.UserError(f"--save_path {save_path} must end in .keras "
                           "(Keras' model file format)")
  directory, name = os.path.split(save_path)
  tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp.keras")
  try:
    model.save(tmp)
    os.replace(tmp, save_path)
  except OSError as e:
    raise errors.UserError(f"cannot write {save_path} ({e.strerror or e}); "
                           "choose another --save_path") from None
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


def main() -> None:
  checkpoint = saved_models.read_mlp_checkpoint(FLAGS.checkpoint, FLAGS.activation)
  model = build_model(checkpoint)
  save_model(model, FLAGS.save_path)
  sizes = (hp.IMAGE_PIXELS, *checkpoint.hidden_units, hp.NUM_CLASSES)
  print(f"Wrote {FLAGS.save_path}: {' -> '.join(map(str, sizes))}, "
        f"{checkpoint.activation}, from the legacy checkpoint {checkpoint.prefix}")


if __name__ == "__main__":
  saved_models.run("modern.migrate_checkpoint", main)
