"""Shared fixtures: the MNIST directory, and running entry points as users do."""

import os
import socket
import subprocess
import sys

import pytest

from common import console
from common import input_data

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Whether the user's shell set it; importing TensorFlow below sets it for
# this process, and the programs the tests start should not inherit that.
_SHELL_TF_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
# Before any test module imports TensorFlow: keeps the start-up noise out.
console.import_tensorflow()


@pytest.fixture(scope="session")
def data_dir():
  """$MNIST_DATA_DIR, else MNIST_data/ downloaded once, like the main commands."""
  directory = os.path.abspath(input_data.resolve_data_dir(None))
  input_data.maybe_download(directory)
  return directory


def closed_port_url():
  """An http:// URL on 127.0.0.1 where nothing listens."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  return f"http://127.0.0.1:{port}/"


def run_module(module, *args, env=None, timeout=600):
  """Runs `python -m module args` from the repo root; returns CompletedProcess.

  The environment is the user's shell's: without the TF_CPP_MIN_LOG_LEVEL
  this test process set for itself. Every proxy points at a closed port, so
  a program that tries to download never reaches the internet.
  """
  full_env = dict(os.environ)
  full_env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  if _SHELL_TF_LOG_LEVEL is not None:
    full_env["TF_CPP_MIN_LOG_LEVEL"] = _SHELL_TF_LOG_LEVEL
  dead = closed_port_url()
  full_env.update(no_proxy="", NO_PROXY="")
  for scheme in ("http", "https"):
    full_env[f"{scheme}_proxy"] = full_env[f"{scheme.upper()}_PROXY"] = dead
  full_env.update(env or {})
  return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                        cwd=REPO_ROOT, env=full_env, capture_output=True,
                        text=True, timeout=timeout)
