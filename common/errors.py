"""Errors that entry points turn into one line on stderr and an exit status."""


class UserError(Exception):
  """Bad input the user can fix: one line, exit status 2, no traceback."""
  exit_status = 2


class NonFiniteCostError(Exception):
  """Training diverged to inf/nan: one line naming epoch and step, exit status 3."""
  exit_status = 3

  def __init__(self, epoch: int, step: int):
    super().__init__(
        f"the cost became non-finite at epoch {epoch}, step {step}; "
        "try a smaller --learning_rate")
    self.epoch = epoch
    self.step = step


class Terminated(BaseException):
  """SIGTERM, raised like KeyboardInterrupt (common/cli.py): exit status 143.

  A BaseException, as KeyboardInterrupt is, so that no `except Exception`
  on the way swallows it.
  """
  exit_status = 143
