"""DL_HW_05week.py, TF 1.x graph-mode reproduction: the MLP with dropout and Adam.

  python -m legacy.hw05 [--seed 3] [--helpshort]
"""

from common import cli
from legacy import port

if __name__ == "__main__":
  cli.run_training_command("hw05", port.PORT)
