"""Files written whole or not at all, and directories checked before use."""

import contextlib
import os
import shutil
import tempfile

from common.errors import UserError


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
  """Yields a temporary path beside `path`; renamed onto it if the block ends well.

  The temporary name starts with a dot and ends in `suffix`, for writers
  that insist on an extension (Keras' ".keras"). If the block raises, the
  temporary file is removed and `path` keeps what it held: a crash never
  leaves half a file under the real name.
  """
  directory, name = os.path.split(path)
  tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp{suffix}")
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.lexists(tmp):
      os.unlink(tmp)


def write_text(path: str, text: str) -> None:
  """Writes `text` to `path` atomically (UTF-8)."""
  with atomic_path(path) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text)


def writable_directory(directory: str, flag: str) -> None:
  """Creates `directory` if needed and makes sure files can be created in it."""
  try:
    os.makedirs(directory, exist_ok=True)
    # Only a real file proves it: root ignores the mode bits, a read-only
    # mount does not.
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
      pass
  except OSError as e:
    raise UserError(f"{flag} {directory} is not a writable directory "
                    f"({e.strerror}); use another directory") from None


@contextlib.contextmanager
def atomic_directory(path: str, flag: str):
  """Yields a new temporary directory beside `path`; renamed onto it if all went well.

  `path` must be missing or an empty directory (which the rename replaces).
  If the block raises, the temporary directory and all in it are removed:
  a failure leaves nothing under the real name.
  """
  parent = os.path.dirname(os.path.abspath(path))
  try:
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}.",
                           suffix=".tmp")
  except OSError as e:
    raise UserError(f"cannot write {flag} {path} ({e.strerror}); use another "
                    "directory") from None
  try:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # as os.makedirs would make it, not 0o700
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.lexists(tmp):
      shutil.rmtree(tmp)
