"""DL_HW_05week.py, TF 1.x graph-mode reproduction: the MLP with dropout and Adam.

  python -m legacy.hw05 [--seed 3] [--helpshort]
"""

from common import cli

if __name__ == "__main__":
  cli.run("hw05", "legacy.train")
