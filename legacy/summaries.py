"""Legacy's TensorBoard scalars (--logdir): a TF1 summary.FileWriter.

The tags and the resume rule are common/summaries.py's, shared with modern.
"""

import itertools
import os
from typing import Optional

import tensorflow as tf

from common import checkpoint_dir
from common import summaries

v1 = tf.compat.v1

_writers = itertools.count()


def unique_suffix() -> str:
  """A FileWriter's file name suffix no other writer of this host has.

  TF1's event file names end in the second and the host only, and a second
  writer of the same name truncates the first's file (a run killed and
  started again within a second); tf.summary's add the pid and a counter.
  """
  return f".{os.getpid()}.{next(_writers)}"


class Summaries:
  """The run's `cost` and `accuracy` scalars; does nothing without a logdir.

  Resumed, it first writes the restored epochs' costs that the logdir does
  not hold yet, and later the accuracy only if it is not there already.
  """

  def __init__(self, logdir: Optional[str], graph: tf.Graph,
               state: checkpoint_dir.TrainingState, training_epochs: int,
               resumed: bool):
    self.writer = None
    self.training_epochs = training_epochs
    if not logdir:
      return
    missing, self.write_accuracy = summaries.still_to_write(
        logdir, state.epoch_costs, training_epochs, resumed)
    with graph.as_default():  # FileWriter refuses eager mode
      self.writer = v1.summary.FileWriter(logdir, graph,
                                          filename_suffix=unique_suffix())
    for epoch, cost in missing:
      self.write(summaries.COST_TAG, cost, epoch)

  def write(self, tag: str, value: float, step: int) -> None:
    if self.writer:
      self.writer.add_summary(
          v1.Summary(value=[v1.Summary.Value(tag=tag, simple_value=value)]),
          step)
      self.writer.flush()

  def write_cost(self, epoch: int, cost: float) -> None:
    self.write(summaries.COST_TAG, cost, epoch)

  def write_final_accuracy(self, accuracy: float) -> None:
    if self.writer and self.write_accuracy:
      self.write(summaries.ACCURACY_TAG, accuracy, self.training_epochs)

  def close(self) -> None:
    if self.writer:
      self.writer.close()
