"""The modern port as the drivers see it (common/ports.py)."""

import numpy as np

from common import ports
from modern import cluster


def run_training(hparams, data_sets, role=None, **options):
  """modern.train.run_training, or with `role` (a common.cluster.Role)
  modern.distributed.run_task; imported when called (TensorFlow quietly first)."""
  if role is not None:
    from modern import distributed  # pylint: disable=g-import-not-at-top
    return distributed.run_task(role, hparams, data_sets, **options)
  from modern import train  # pylint: disable=g-import-not-at-top
  return train.run_training(hparams, data_sets, **options)


# The file format the port saves models in (--save_path): checked by flag
# validators, before TensorFlow is imported.
KERAS_SUFFIX = ".keras"


def is_keras_path(path) -> bool:
  """A flag validator: unset, or a file name ending in .keras."""
  return path is None or path.endswith(KERAS_SUFFIX)


# Images as uint8: a quarter of float32's memory (43 MB for the training
# set, not 172 MB), scaled batch by batch in the input pipeline
# (train.to_float), as keras.io's examples do.
PORT = ports.Port(name="modern", image_dtype=np.uint8, run_training=run_training,
                  save_path_suffix=KERAS_SUFFIX,
                  cluster=cluster.INTERFACE)
