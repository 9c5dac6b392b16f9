"""Shared fixtures: the MNIST directory and full MNIST, read once a session.

Helper functions live in helpers.py (`import helpers`), not here.
"""

import os

import pytest

from common import console
from common import input_data
import helpers  # noqa: F401  (before TensorFlow: it notes the shell's log level)

# Before any test module imports TensorFlow: keeps the start-up noise out.
console.import_tensorflow()


@pytest.fixture(scope="session")
def data_dir():
  """$MNIST_DATA_DIR, else MNIST_data/ downloaded once, like the main commands."""
  directory = os.path.abspath(input_data.resolve_data_dir(None))
  input_data.maybe_download(directory)
  return directory


@pytest.fixture(scope="session")
def full_mnist(data_dir):
  """Full MNIST as the homework scripts read it (float32 pixels, one-hot
  labels), read once for the whole session.

  Its arrays are shared by every module: never write to them, and draw no
  batches from these DataSets; take your own generators with
  helpers.fresh_data_sets(full_mnist, seed, train_limit), which is what
  read_data_sets with that seed and train_limit would return.
  """
  return input_data.read_data_sets(data_dir, one_hot=True)
