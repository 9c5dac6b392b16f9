"""The TensorBoard scalars both ports write under --logdir, by the same tags.

  cost      the epoch's mean training cost (the `Epoch:` line), at step = epoch
  accuracy  the test accuracy (the `Accuracy:` line), at step = training_epochs

so that the two ports' runs overlay in one TensorBoard; each port writes
them its own way (TF1's FileWriter, TF2's tf.summary).

A run resumed from --checkpoint_dir appends to the same --logdir: it writes
only the steps no event file there holds yet (a run killed between a save
and its summary left one out; a finished run resumed again adds nothing).
"""

import glob
import os
from typing import List, Set, Tuple

import tensorflow as tf

COST_TAG = "cost"
ACCURACY_TAG = "accuracy"


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


def still_to_write(logdir: str, epoch_costs: List[float], training_epochs: int,
                   resumed: bool) -> Tuple[List[Tuple[int, float]], bool]:
  """What a run must still write to `logdir` before its next epoch.

  Returns (the restored epochs' (epoch, cost) that no event file holds yet,
  whether the accuracy is still to be written). A new run owes nothing
  from before and writes its accuracy; a resumed one appends to the
  interrupted run's events, never repeating them.
  """
  if not resumed:
    return [], True
  accuracy_logged = training_epochs in logged_steps(logdir, ACCURACY_TAG)
  return missing_costs(logdir, epoch_costs), not accuracy_logged
