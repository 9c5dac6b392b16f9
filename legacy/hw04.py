"""DL_HW_04week.py, TF 1.x graph-mode reproduction: the MLP with plain gradient descent.

  python -m legacy.hw04 [--seed 3] [--helpshort]
"""

from common import cli

if __name__ == "__main__":
  cli.run("hw04", "legacy.train")
