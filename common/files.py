"""Files written whole or not at all, and directories checked before use."""

import contextlib
import errno
import os
import shutil
import tempfile
from typing import List

from common import resources
from common.errors import UserError

# Testing only (as common/checkpoint_dir.py's kill_in_save): "enospc:POINT"
# makes the write at POINT fail as a full disk does (`fault_point`).
FAULT_ENV = "MNIST_PORT_FAULT"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# How TensorFlow's C++ file writers say it (ResourceExhaustedError).
_DISK_FULL_TEXT = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))


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


def writable_directory(directory: str, flag: str) -> List[str]:
  """Creates `directory` if needed and makes sure files can be created in it.

  Returns the directories it created, outermost first (`remove_directories`
  undoes them). Raises UserError, having created nothing, if it cannot.
  """
  created = []
  try:
    created = make_directories(directory)
    # Only a real file proves it: root ignores the mode bits, a read-only
    # mount does not.
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
      pass
  except OSError as e:
    remove_directories(created)
    raise UserError(f"{flag} {directory} is not a writable directory "
                    f"({e.strerror}); use another directory") from None
  return created


def writable_file(path: str, flag: str) -> List[str]:
  """Makes sure `path` can be written, by a file created and removed beside it.

  The parent directories are created if missing; `path` itself is never
  touched (it may hold a model). Returns the directories created, as
  `writable_directory` does.
  """
  directory, name = os.path.split(path)
  created = []
  try:
    created = make_directories(directory or ".")
    with tempfile.NamedTemporaryFile(dir=directory or ".",
                                     prefix=f".{name}.write-test-"):
      pass
  except OSError as e:
    remove_directories(created)
    raise UserError(f"{flag} {path} cannot be written ({e.strerror}); "
                    f"choose another {flag}") from None
  return created


def make_directories(directory: str) -> List[str]:
  """os.makedirs, returning the directories it created, outermost first."""
  missing = []
  head = os.path.abspath(directory)
  while not os.path.isdir(head):
    missing.append(head)
    parent = os.path.dirname(head)
    if parent == head:
      break
    head = parent
  os.makedirs(directory, exist_ok=True)
  return missing[::-1]


def remove_directories(created: List[str]) -> None:
  """Removes what `make_directories` created, innermost first, if still empty."""
  for directory in reversed(created):
    try:
      os.rmdir(directory)
    except OSError:
      continue  # something is in it now: it (and so its parents) stays


def is_disk_full(error: BaseException) -> bool:
  """Whether `error` is a write failing for want of space (or of quota).

  An OSError carries the errno; TensorFlow's ResourceExhaustedError only
  the system's message.
  """
  if isinstance(error, OSError) and error.errno in _DISK_FULL:
    return True
  return any(text in str(error) for text in _DISK_FULL_TEXT)


def disk_full(path: str, flag: str, advice: str = "") -> UserError:
  """The one-line error for a write of `path` (given as `flag`) that ran out
  of space: the path, the space left, and `advice` (by default: free some or
  write elsewhere)."""
  directory = path if os.path.isdir(path) else os.path.dirname(path) or "."
  try:
    free = f"{resources.describe_bytes(shutil.disk_usage(directory).free)} free"
  except OSError:
    free = "free space unknown"
  return UserError(f"no space left on the device to write {flag} {path} "
                   f"({free}); {advice or f'free some space or choose another {flag}'}")


def fault_point(point: str) -> None:
  """Testing hook: with $MNIST_PORT_FAULT=enospc:POINT, raises the OSError a
  full disk raises, here. Unset, it does nothing."""
  if os.environ.get(FAULT_ENV) == f"enospc:{point}":
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), point)


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
