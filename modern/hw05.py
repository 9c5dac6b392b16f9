"""DL_HW_05week.py, TF2 Keras port: the MLP with dropout and Adam.

  python -m modern.hw05 [--seed 3] [--helpshort]
"""

from common import cli
from modern import port

if __name__ == "__main__":
  cli.run_training_command("hw05", port.PORT)
