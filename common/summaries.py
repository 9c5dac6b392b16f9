"""The TensorBoard scalars both ports write under --logdir, by the same tags.

  cost      the epoch's mean training cost (the `Epoch:` line), at step = epoch
  accuracy  the test accuracy (the `Accuracy:` line), at step = training_epochs

so that a legacy run and a modern run overlay in one TensorBoard. Legacy
writes them with tf.compat.v1.summary.FileWriter, modern with tf.summary.

A run resumed from --checkpoint_dir appends to the same --logdir: it writes
only the steps no event file there holds yet (a run killed between a save
and its summary left one out; a finished run resumed again adds nothing).
"""

import glob
import itertools
import os
from typing import List, Set, Tuple

import tensorflow as tf

COST_TAG = "cost"
ACCURACY_TAG = "accuracy"

_writers = itertools.count()


def unique_suffix() -> str:
  """A FileWriter's file name suffix no other writer of this host has.

  TF1's event file names end in the second and the host only, and a second
  writer of the same name truncates the first's file (a run killed and
  started again within a second); tf.summary's add the pid and a counter.
  """
  return f".{os.getpid()}.{next(_writers)}"


def logged_steps(logdir: str, tag: str) -> Set[int]:
  """The steps at which the event files in `logdir` hold scalar `tag`."""
  steps = set()
  for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
    try:
      for event in tf.compat.v1.train.summary_iterator(path):
        if any(value.tag == tag for value in event.summary.value):
          steps.add(event.step)
    except tf.errors.DataLossError:
      pass  # a file cut short by a killed process: what was read counts
  return steps


def missing_costs(logdir: str, epoch_costs: List[float]) -> List[Tuple[int, float]]:
  """(epoch, cost) of the restored epochs that `logdir` does not hold yet."""
  logged = logged_steps(logdir, COST_TAG)
  return [(epoch, cost) for epoch, cost in enumerate(epoch_costs, start=1)
          if epoch not in logged]
