"""The phase times of one training command, for `make bench`.

When $MNIST_PORT_TIMINGS names a file, the command writes there, as JSON,
how long it spent importing, reading data, training (up to its last
`Epoch:` line) and evaluating (from there to its `Accuracy:` line).
"""

import json
import os
import time
from typing import Optional

from common import console

TIMINGS_ENV = "MNIST_PORT_TIMINGS"


class PhaseTimer:
  """Marks the phases of one run; the printed lines mark training's end."""

  def __init__(self, path: Optional[str]):
    self.path = path
    self.marks = {"start": time.perf_counter()}

  @classmethod
  def from_environment(cls) -> "PhaseTimer":
    return cls(os.environ.get(TIMINGS_ENV) or None)

  def mark(self, phase: str) -> None:
    self.marks[phase] = time.perf_counter()

  def print_line(self, line: str) -> None:
    """A run's print_fn: prints `line`, then marks the phase it ends."""
    print(line, flush=True)
    self.mark("last_epoch" if console.is_epoch_line(line) else "evaluated")

  def write(self) -> None:
    """Writes the phase times to the file named, if any."""
    if not self.path:
      return
    m = self.marks
    phases = {"import_s": m["imported"] - m["start"],
              "data_s": m["data"] - m["imported"],
              "train_s": m["last_epoch"] - m["data"],
              "evaluate_s": m["evaluated"] - m["last_epoch"]}
    with open(self.path, "w") as f:
      json.dump(phases, f)
