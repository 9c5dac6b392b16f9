"""Errors that commands turn into one line on stderr and an exit status."""

import os
import re
import sys


class UserError(Exception):
  """Bad input the user can fix: one line, exit status 2, no traceback."""
  exit_status = 2


class NonFiniteCostError(Exception):
  """Training diverged to inf/nan: one line naming epoch and step, exit status 3."""
  exit_status = 3

  def __init__(self, epoch: int, step: int):
    if (epoch, step) == (1, 1):
      # The first step's cost is the initial weights': no update, and so no
      # learning rate, has touched them yet.
      advice = ("before any update: the initial weights overflow float32; "
                "use a smaller --init (or --bias_init) scale")
    else:
      advice = "try a smaller --learning_rate"
    super().__init__(
        f"the cost became non-finite at epoch {epoch}, step {step}; {advice}")
    self.epoch = epoch
    self.step = step


class TaskLostError(Exception):
  """A cluster lost a task while training: one line naming it, exit status 1."""
  exit_status = 1


class Terminated(BaseException):
  """SIGTERM, raised like KeyboardInterrupt (common/cli.py): exit status 143.

  A BaseException, as KeyboardInterrupt is, so that no `except Exception`
  on the way swallows it.
  """
  exit_status = 143


def fail(message: str, status: int) -> None:
  """Ends the command: `error: message` on stderr, exit `status`."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(status)


def exit_now(error: Exception) -> None:
  """Ends the process at once, `error: <error>` on stderr, no clean-up.

  For a process whose TensorFlow runtime cannot shut down (a session whose
  cluster lost a task waits for it forever when closed).
  """
  sys.stdout.flush()
  print(f"error: {error}", file=sys.stderr, flush=True)
  os._exit(getattr(error, "exit_status", 1))


# A TF session's error opens with "Graph execution error:" and each failed
# op's Python traceback, closed by its "Node: 'name'" line; then the message.
_TF_NODE_LINE = re.compile(r"^Node: '[^']*'$")
_TF_PREAMBLE = "Graph execution error:"


def first_line(error: Exception) -> str:
  """An exception's message fit for a one-line error (TF's can span lines)."""
  lines = [line for line in str(error).strip().splitlines() if line.strip()]
  if not lines:
    return type(error).__name__
  nodes = [i for i, line in enumerate(lines) if _TF_NODE_LINE.match(line)]
  if nodes and nodes[-1] + 1 < len(lines):
    return lines[nodes[-1] + 1].strip()
  # A remote task's error has no local node: its message follows the preamble.
  if lines[0].strip() == _TF_PREAMBLE and len(lines) > 1:
    return lines[1].strip()
  return lines[0]
