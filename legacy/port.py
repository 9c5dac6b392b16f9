"""The legacy port as the drivers see it (common/ports.py)."""

import numpy as np

from common import ports
from legacy import cluster


def run_training(hparams, data_sets, role=None, **options):
  """legacy.train.run_training, or with `role` (a common.cluster.Role)
  legacy.distributed.run_task; imported when called (TensorFlow quietly first)."""
  if role is not None:
    from legacy import distributed  # pylint: disable=g-import-not-at-top
    return distributed.run_task(role, hparams, data_sets, **options)
  from legacy import train  # pylint: disable=g-import-not-at-top
  return train.run_training(hparams, data_sets, **options)


# Images as float32 in [0, 1], fed as they are, as TF1's tutorial fed them.
PORT = ports.Port(name="legacy", image_dtype=np.float32, run_training=run_training,
                  cluster=cluster.INTERFACE)
