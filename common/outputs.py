"""Where a command writes, checked before TensorFlow is imported.

--save_path, --checkpoint_dir, --logdir and --export_dir are each proved
writable with a file created and removed (beside --save_path, never the
path itself: it may hold a model; inside the directories), creating
missing directories on the way. A path that cannot be written is one line
before the import, not a traceback after the training. If the command then
fails, the directories the check created go again, unless something was
written in them.
"""

import contextlib
from typing import Dict, Iterator, List, Optional

from common import files

# The output flags, as the commands name them; a file, or directories.
FILE_FLAGS = ("save_path",)
DIRECTORY_FLAGS = ("checkpoint_dir", "logdir", "export_dir")


def output_paths(flag_values) -> Dict[str, str]:
  """{flag: path} of the output flags `flag_values` defines and were given."""
  return {name: flag_values[name].value
          for name in FILE_FLAGS + DIRECTORY_FLAGS
          if name in flag_values and flag_values[name].value is not None}


@contextlib.contextmanager
def checked(paths: Dict[str, str]) -> Iterator[None]:
  """Checks every path of `paths` ({flag: path}) is writable; runs the block.

  Raises UserError for the first that is not. If the block fails (an
  exception, SystemExit included), the directories the checks created are
  removed, those still empty.
  """
  created: List[str] = []
  try:
    for name, path in paths.items():
      flag = f"--{name}"
      if name in FILE_FLAGS:
        created += files.writable_file(path, flag)
      else:
        created += files.writable_directory(path, flag)
    yield
  except BaseException:
    files.remove_directories(created)
    raise


def check_suffix(save_path: Optional[str], suffix: str) -> Optional[str]:
  """The error line if `save_path` lacks the port's file suffix, else None."""
  if save_path and suffix and not save_path.endswith(suffix):
    return (f"--save_path {save_path} must end in {suffix} (the port's "
            "model file format)")
  return None
