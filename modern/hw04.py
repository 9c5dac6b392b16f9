"""DL_HW_04week.py, TF2 Keras port: the MLP with plain gradient descent.

  python -m modern.hw04 [--seed 3] [--helpshort]
"""

from common import cli
from modern import port

if __name__ == "__main__":
  cli.run_training_command("hw04", port.PORT)
