"""DL_HW_04week.py, TF 1.x graph-mode reproduction: the MLP with plain gradient descent.

  python -m legacy.hw04 [--seed 3] [--helpshort]
"""

from common import cli
from legacy import port

if __name__ == "__main__":
  cli.run_training_command("hw04", port.PORT)
