"""The serving contract both ports export, and where an export is written.

One SavedModel signature, its names written here once:

  serving_default: images float32 [None, 784] (pixels in [0, 1])
               -> probabilities float32 [None, 10] (softmax of the logits)
                  classes int64 [None] (argmax of the logits)

An export goes to BASE/N, TensorFlow Serving's versioned layout: N is one
more than the highest version already there, or --export_version. It is
written under a name that is not a number (Serving watches BASE for
numbers) and renamed to N only when complete.
"""

import contextlib
import dataclasses
import os
import shutil
import tempfile
from typing import List, Optional

from common import files
from common.errors import UserError

SIGNATURE = "serving_default"
TAG = "serve"
INPUT = "images"
PROBABILITIES = "probabilities"
CLASSES = "classes"
METHOD = "tensorflow/serving/predict"  # what a predict SignatureDef reports


def versions(base: str) -> List[int]:
  """The numbered versions under `base`, lowest first (none: [])."""
  if not os.path.isdir(base):
    return []
  return sorted(int(name) for name in os.listdir(base)
                if name.isascii() and name.isdigit()
                and os.path.isdir(os.path.join(base, name)))


@dataclasses.dataclass(frozen=True)
class ExportTarget:
  base: str
  version: int

  @property
  def path(self) -> str:
    return os.path.join(self.base, str(self.version))


def prepare_export(base: Optional[str],
                   version: Optional[int] = None) -> Optional[ExportTarget]:
  """Checks --export_dir before training: writable, and BASE/N still free."""
  if base is None:
    return None
  files.writable_directory(base, "--export_dir")
  if version is None:
    version = max(versions(base), default=0) + 1
  target = ExportTarget(base, version)
  _refuse_existing(target)
  return target


def _refuse_existing(target: ExportTarget) -> None:
  if os.path.lexists(target.path):
    raise UserError(f"--export_dir {target.path} already exists; give "
                    "another --export_version, or leave it out for the next one")


@contextlib.contextmanager
def export_path(target: ExportTarget):
  """Yields a path (not yet existing) to write the SavedModel to.

  It lies in a temporary directory under BASE; when the block ends well it
  is renamed to BASE/N. Whatever happens, the temporary directory goes; a
  full disk is one UserError.
  """
  tmp = tempfile.mkdtemp(dir=target.base, prefix=f".export-{target.version}-")
  try:
    path = os.path.join(tmp, "model")  # writers want to create it themselves
    yield path
    files.fault_point("export")
    _refuse_existing(target)  # taken while this run trained?
    os.rename(path, target.path)
  except Exception as e:  # pylint: disable=broad-except
    if files.is_disk_full(e):  # TF's writers raise OSError or OpErrors
      raise files.disk_full(target.path, "--export_dir") from None
    raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
