"""Modern's TensorBoard scalars (--logdir): tf.summary, from a Keras callback.

The tags and the resume rule are common/summaries.py's, shared with legacy.
The stock keras.callbacks.TensorBoard names them otherwise ("epoch_loss");
these tags overlay a legacy run's.
"""

from typing import Optional

import keras
import tensorflow as tf

from common import checkpoint_dir
from common import summaries


class Summaries(keras.callbacks.Callback):
  """The run's `cost` and `accuracy` scalars; does nothing without a logdir.

  Resumed, it first writes the restored epochs' costs that the logdir does
  not hold yet, and later the accuracy only if it is not there already.
  """

  def __init__(self, logdir: Optional[str], state: checkpoint_dir.TrainingState,
               training_epochs: int, resumed: bool):
    super().__init__()
    self.writer = None
    self.training_epochs = training_epochs
    if not logdir:
      return
    missing, self.write_accuracy = summaries.still_to_write(
        logdir, state.epoch_costs, training_epochs, resumed)
    self.writer = tf.summary.create_file_writer(logdir)
    for epoch, cost in missing:
      self.write(summaries.COST_TAG, cost, epoch)

  def write(self, tag: str, value: float, step: int) -> None:
    if self.writer:
      with self.writer.as_default():
        tf.summary.scalar(tag, value, step=step)
      self.writer.flush()

  def write_cost(self, epoch: int, cost: float) -> None:
    self.write(summaries.COST_TAG, cost, epoch)

  def write_final_accuracy(self, accuracy: float) -> None:
    if self.writer and self.write_accuracy:
      self.write(summaries.ACCURACY_TAG, accuracy, self.training_epochs)

  def on_epoch_end(self, epoch, logs=None):
    self.write_cost(epoch + 1, logs["loss"])

  def close(self) -> None:
    if self.writer:
      self.writer.close()
