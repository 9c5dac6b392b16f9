"""Shared fixtures: the MNIST directory, and running entry points as users do."""

import os
import subprocess
import sys

import pytest

from common import console
from common import input_data

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Before any test module imports TensorFlow: keeps the start-up noise out.
console.import_tensorflow()


@pytest.fixture(scope="session")
def data_dir():
  """$MNIST_DATA_DIR, else MNIST_data/ downloaded once, like the main commands."""
  directory = os.path.abspath(input_data.resolve_data_dir(None))
  input_data.maybe_download(directory)
  return directory


def run_module(module, *args, env=None, timeout=600):
  """Runs `python -m module args` from the repo root; returns CompletedProcess."""
  full_env = dict(os.environ, **(env or {}))
  return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                        cwd=REPO_ROOT, env=full_env, capture_output=True,
                        text=True, timeout=timeout)
