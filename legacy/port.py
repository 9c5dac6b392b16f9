"""The legacy port as the drivers see it (common/ports.py)."""

import numpy as np

from common import ports


def run_training(hparams, data_sets, **options):
  """legacy.train.run_training, imported when called (TensorFlow quietly first)."""
  from legacy import train  # pylint: disable=g-import-not-at-top
  return train.run_training(hparams, data_sets, **options)


# Images as float32 in [0, 1], fed as they are, as TF1's tutorial fed them.
PORT = ports.Port(name="legacy", image_dtype=np.float32, run_training=run_training)
