"""The port interface: what a driver needs to know of a port, written once.

The command-line driver (common/cli.py), the experiments runner and the
tests are handed a Port object and use nothing else of the port: each port
defines its one PORT in its own port.py. `run_training` imports the port's
TensorFlow code only when called, so that a driver can import TensorFlow
quietly first (common/console.py).
"""

import dataclasses
from typing import Any, Callable, Optional

from common import cluster as cluster_lib
from common import hparams as hp
from common import input_data


@dataclasses.dataclass(frozen=True)
class Port:
  """One port of the homework scripts.

  name: the port's name in run records, checkpoint records and reports,
    and its package (`python -m NAME.hw05`).
  image_dtype: the images the port asks input_data.read_data_sets for
    (numpy float32 in [0, 1], or uint8 it scales itself).
  run_training: trains and evaluates one run:
    run_training(hparams, data_sets, save_path=None, checkpoint_dir=None,
                 logdir=None, export_target=None, print_fn=print) -> the port's TrainingResult
    (epoch_costs, accuracy, weights), printing the `Epoch:` lines and the
    `Accuracy:` line through print_fn; `export_target`, a
    common.serving.ExportTarget, writes the SavedModel there. With
    `role=` a common.cluster.Role, it runs that one task of a cluster
    (data_sets None for a parameter server).
  save_path_suffix: what a --save_path must end in ("" for any name),
    checked before TensorFlow is imported.
  cluster: how the port's training command takes part in a cluster
    (common/cluster.py Interface): its flags, its Role, and what the
    launcher (common/launcher.py) tells each task.
  """
  name: str
  image_dtype: type
  run_training: Callable[..., Any]
  save_path_suffix: str = ""
  cluster: Optional[cluster_lib.Interface] = None

  def read_data_sets(self, data_dir: Optional[str],
                     hparams: hp.HParams) -> input_data.Datasets:
    """MNIST as `python -m NAME.hw0N` reads it for `hparams`."""
    return input_data.read_data_sets(
        data_dir, one_hot=True, dtype=self.image_dtype, seed=hparams.seed,
        train_limit=hparams.train_limit)
