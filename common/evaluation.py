"""What the evaluate commands of both ports read and print, written once.

  read_test_set()     - MNIST's test set, from where training reads it.
  predict_indices()   - --predict's indices, checked against the test set.
  print_evaluation()  - the training run's `Accuracy: ...` line, then one
                        `test[7]: predicted 9, label 9` line per index.
"""

import dataclasses
from typing import List, Optional, Sequence

import numpy as np

from common import console
from common import errors
from common import input_data


@dataclasses.dataclass
class Evaluation:
  accuracy: np.float32     # on the whole test set, as training computes it
  predictions: np.ndarray  # the predicted digit of every test image


def read_test_set(data_dir: Optional[str] = None) -> input_data.DataSet:
  """MNIST's 10,000 test images, from where training reads them (--data_dir)."""
  return input_data.read_data_sets(data_dir, one_hot=True).test


def predict_indices(predict: Optional[Sequence[str]],
                    test: input_data.DataSet) -> List[int]:
  """--predict's indices as ints; raises UserError for one past the test set."""
  indices = [int(i) for i in predict or ()]
  for index in indices:
    if index >= test.num_examples:
      raise errors.UserError(
          f"--predict index {index} is out of range: the test set has "
          f"{test.num_examples} images, 0..{test.num_examples - 1}")
  return indices


def prediction_line(index: int, predicted: int, label: int) -> str:
  """One --predict line: `test[7]: predicted 9, label 9`."""
  return f"test[{index}]: predicted {predicted}, label {label}"


def print_evaluation(evaluation: Evaluation, test: input_data.DataSet,
                     indices: Sequence[int] = (), print_fn=print) -> None:
  print_fn(console.accuracy_line(evaluation.accuracy))
  labels = test.labels.argmax(axis=1)
  for index in indices:
    print_fn(prediction_line(index, int(evaluation.predictions[index]),
                             int(labels[index])))
