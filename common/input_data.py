"""MNIST the way TF 1.x's tutorial loader served it, without TensorFlow.

`read_data_sets` keeps the API and batch semantics of
`tensorflow.examples.tutorials.mnist.input_data` (TF 1.x): the first
`validation_size` training images become the validation set, pixels are
float32 in [0, 1], labels are optionally one-hot, and `next_batch` shuffles
the first epoch at its first batch, reshuffles at every epoch end, and lets a
batch straddle an epoch end. Two deliberate differences: each DataSet owns its
random generator (TF 1.x reseeded numpy's global one as a side effect), and
one-hot labels are float32, not float64 (they are fed to float32 placeholders
anyway, at half the memory).

Files come from a directory (`--data_dir`, else $MNIST_DATA_DIR, else
MNIST_data/); missing ones are downloaded there, verified by SHA-256 and
renamed into place only once verified. A download names its mirror at once
if the mirror is slow to answer, and gives up on a file after a deadline
($MNIST_DOWNLOAD_DEADLINE_S, default 300 s); what it wrote goes if it fails
or is interrupted, and what a killed run left is removed by the next.
"""

import contextlib
import dataclasses
import gzip
import hashlib
import http.client
import os
import re
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from common import files
from common.errors import UserError
from common.hparams import NUM_CLASSES

DEFAULT_DATA_DIR = "MNIST_data"
DATA_DIR_ENV = "MNIST_DATA_DIR"

# TensorFlow's CVDF mirror (the one TF 1.x used) first, then other
# well-known mirrors of the same files.
SOURCE_URLS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

# The official files' SHA-256, as published beside them (SHA256SUMS).
SHA256 = {
    TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
}

_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049
_DOWNLOAD_TIMEOUT_S = 30  # for any one read
# For a whole file, all mirrors together; tests make it short.
DEADLINE_ENV = "MNIST_DOWNLOAD_DEADLINE_S"
_DEFAULT_DEADLINE_S = 300
# A mirror that has not answered by then is named at once, not on answering.
_ANNOUNCE_AFTER_S = 1.0
_CHUNK = 1 << 16
# A download in progress: .NAME.PID-RANDOM.part, renamed to NAME once verified.
_PART = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)-)?[^.]+\.part$")


class DataError(UserError):
  """The MNIST files are missing, unreachable or damaged."""


def resolve_data_dir(data_dir: Optional[str] = None) -> str:
  """--data_dir, else $MNIST_DATA_DIR, else MNIST_data/ (the original default)."""
  return data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR


# ---------------------------------------------------------------- the files


# {path: (its stat's identity, its SHA-256)}: the commands check the files
# before importing TensorFlow, then read them: hashed once, not twice.
_digests: Dict[str, Tuple[tuple, str]] = {}


def _sha256(path: str) -> str:
  try:
    stat = os.stat(path)
    identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if _digests.get(path, (None,))[0] == identity:
      return _digests[path][1]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
      for chunk in iter(lambda: f.read(_CHUNK), b""):
        digest.update(chunk)
  except OSError as e:
    raise DataError(f"cannot read {path} ({e.strerror})") from None
  _digests[path] = (identity, digest.hexdigest())
  return digest.hexdigest()


def _supply_hint(directory: str) -> str:
  return (f"put the four MNIST .gz files in {directory}, or point --data_dir "
          f"or ${DATA_DIR_ENV} at a directory that holds them")


class _DeadlinePassed(Exception):
  """The file's download deadline passed (raised from SIGALRM's handler)."""


def deadline_s() -> float:
  """$MNIST_DOWNLOAD_DEADLINE_S, else 300: the seconds one file may take."""
  try:
    return float(os.environ.get(DEADLINE_ENV) or _DEFAULT_DEADLINE_S)
  except ValueError:
    raise DataError(f"${DEADLINE_ENV} must be a number of seconds, not "
                    f"{os.environ[DEADLINE_ENV]!r}") from None


@contextlib.contextmanager
def _alarm(seconds: float):
  """Raises _DeadlinePassed in the block after `seconds`, wherever it waits.

  A per-read timeout alone never fires on a mirror (or proxy) that sends a
  byte every few seconds. SIGALRM interrupts any blocking read; it can
  only be handled in the main thread: elsewhere `_fetch` checks the
  deadline between reads instead.
  """
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def expire(signum, frame):
    raise _DeadlinePassed()
  previous = signal.signal(signal.SIGALRM, expire)
  signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
  try:
    yield
  finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def _part_path(directory: str, filename: str) -> str:
  return os.path.join(directory,
                      f".{filename}.{os.getpid()}-{secrets.token_hex(4)}.part")


def _remove_stale_parts(directory: str) -> None:
  """Removes the .part files of downloads whose process is gone (SIGKILL)."""
  for name in os.listdir(directory):
    match = _PART.match(name)
    if not match or match["name"] not in SHA256:
      continue
    pid = int(match["pid"] or 0)
    if pid and pid != os.getpid() and _process_exists(pid):
      continue  # another process is downloading it now
    with contextlib.suppress(OSError):
      os.unlink(os.path.join(directory, name))


def _process_exists(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except (ProcessLookupError, OverflowError):
    return False
  except PermissionError:
    return True  # someone else's
  return True


def _download(filename: str, directory: str, source_urls: Sequence[str]) -> None:
  """Fetches one file into `directory`, trying each mirror in turn.

  The bytes go to a temporary name in the same directory and are renamed into
  place only after the checksum matches, so a failed, corrupted or
  interrupted download leaves nothing behind. All mirrors together have
  `deadline_s()`.
  """
  failures = []
  seconds = deadline_s()
  deadline = time.monotonic() + seconds
  for base_url in source_urls:
    url = base_url + filename
    if time.monotonic() >= deadline:
      failures.append(f"{url}: not tried, the {seconds:g} s deadline passed")
      continue
    tmp = _part_path(directory, filename)
    try:
      with _alarm(deadline - time.monotonic()):
        with open(tmp, "xb") as out:
          _fetch(url, out, filename, deadline)
      if _sha256(tmp) != SHA256[filename]:
        failures.append(f"{url}: checksum mismatch")
        continue
      os.replace(tmp, os.path.join(directory, filename))
      return
    except _DeadlinePassed:
      failures.append(f"{url}: no complete file within the {seconds:g} s "
                      f"deadline (${DEADLINE_ENV})")
    except (urllib.error.URLError, OSError, ValueError) as e:
      if isinstance(e, OSError) and e.filename == tmp:
        raise DataError(f"cannot write to {directory} ({e.strerror}); "
                        + _supply_hint(directory)) from None
      failures.append(f"{url}: {getattr(e, 'reason', None) or e}")
    except http.client.HTTPException as e:  # a mirror not speaking HTTP
      failures.append(f"{url}: not an HTTP response ({type(e).__name__})")
    finally:  # also on Ctrl-C or SIGTERM (common/cli.py)
      if os.path.exists(tmp):
        os.unlink(tmp)
  raise DataError(f"could not download {filename} ({'; '.join(failures)}); "
                  + _supply_hint(directory))


class _Announcement:
  """"Downloading NAME from URL" on stderr, once: when the mirror answers, or
  after _ANNOUNCE_AFTER_S without an answer, whichever comes first. An
  unreachable mirror fails at once and is named in the error line instead,
  so "no network" stays one line on stderr."""

  def __init__(self, filename: str, url: str, interactive: bool):
    self.text = f"Downloading {filename} from {url}"
    self.interactive = interactive
    self._lock = threading.Lock()
    self._done = False
    self._timer = threading.Timer(_ANNOUNCE_AFTER_S, self.say)
    self._timer.daemon = True

  def say(self) -> None:
    with self._lock:
      if not self._done:
        self._done = True
        print(self.text, file=sys.stderr, end="" if self.interactive else "\n",
              flush=True)

  def __enter__(self):
    self._timer.start()
    return self

  def __exit__(self, *unused_exc_info):
    self._timer.cancel()
    with self._lock:
      if self._done and self.interactive:
        # End the progress line, even if the transfer failed or never began.
        print(file=sys.stderr)


def _fetch(url: str, out, filename: str, deadline: float) -> None:
  """Streams `url` into the open file `out`, showing progress on stderr."""
  interactive = sys.stderr.isatty()
  announcement = _Announcement(filename, url, interactive)
  timeout = min(_DOWNLOAD_TIMEOUT_S, max(deadline - time.monotonic(), 1e-3))
  with announcement, urllib.request.urlopen(url, timeout=timeout) as response:
    announcement.say()
    total = int(response.headers.get("Content-Length") or 0)
    done = 0
    # read1: whatever has arrived, so that the deadline is checked between
    # reads even where no alarm can be set (`_alarm`).
    for chunk in iter(lambda: response.read1(_CHUNK), b""):
      if time.monotonic() > deadline:
        raise _DeadlinePassed()
      out.write(chunk)
      done += len(chunk)
      if interactive and total:
        print(f"\r{announcement.text}: {100 * done // total}%",
              file=sys.stderr, end="", flush=True)


def maybe_download(directory: str,
                   source_urls: Sequence[str] = SOURCE_URLS) -> None:
  """Makes sure `directory` holds the four verified MNIST files."""
  missing = [name for name in SHA256
             if not os.path.exists(os.path.join(directory, name))]
  for name in SHA256:
    if name not in missing and _sha256(os.path.join(directory, name)) != SHA256[name]:
      raise DataError(
          f"{os.path.join(directory, name)} is not the official MNIST file "
          "(SHA-256 mismatch); delete it to download it again, or "
          + _supply_hint(directory))
  if not missing:
    return
  try:
    created = files.make_directories(directory)
  except OSError as e:
    raise DataError(f"MNIST files missing ({', '.join(missing)}) and "
                    f"{directory} cannot be created ({e.strerror}); "
                    + _supply_hint(directory)) from None
  try:
    _remove_stale_parts(directory)
    for i, name in enumerate(missing):
      try:
        _download(name, directory, source_urls)
      except DataError as e:
        raise DataError(f"MNIST files missing from {directory}: "
                        f"{', '.join(missing[i:])}; {e}") from None
  except BaseException:  # an error, Ctrl-C, SIGTERM: leave no trace
    files.remove_directories(created)
    raise


# ---------------------------------------------------------------- parsing


def _read_idx(path: str, magic: int, ndim: int) -> np.ndarray:
  """Reads an IDX file (gzip) into a uint8 array, checking its header."""
  try:
    with gzip.open(path, "rb") as f:
      data = f.read()
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f"{path} is not a readable gzip file ({e}); delete it "
                    "to download it again") from None
  header_size = 4 * (1 + ndim)
  if len(data) < header_size:
    raise DataError(f"{path} is truncated: no complete IDX header")
  header = np.frombuffer(data, dtype=">u4", count=1 + ndim)
  if header[0] != magic:
    raise DataError(f"{path} has IDX magic number {header[0]}, expected "
                    f"{magic}: it is not an MNIST "
                    f"{'image' if magic == _IMAGES_MAGIC else 'label'} file")
  shape = tuple(int(n) for n in header[1:])
  size = int(np.prod(shape))
  if len(data) - header_size != size:
    raise DataError(f"{path} holds {len(data) - header_size} bytes of data, "
                    f"its header promises {size}: the file is damaged")
  return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def extract_images(path: str) -> np.ndarray:
  """uint8 images [count, rows, cols] from an IDX3 gzip file."""
  return _read_idx(path, _IMAGES_MAGIC, 3)


def extract_labels(path: str, one_hot: bool = False) -> np.ndarray:
  """uint8 class ids [count], or float32 one-hot [count, 10]."""
  labels = _read_idx(path, _LABELS_MAGIC, 1)
  return dense_to_one_hot(labels) if one_hot else labels


def dense_to_one_hot(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
  return np.eye(num_classes, dtype=np.float32)[labels]


# ---------------------------------------------------------------- batches


class DataSet:
  """One split of MNIST, with TF 1.x `next_batch` semantics.

  The data are never permuted in place: an index permutation picks each
  batch, so the image array is never copied.
  """

  def __init__(self, images: np.ndarray, labels: np.ndarray,
               seed: Optional[np.random.SeedSequence | int] = None):
    if images.shape[0] != labels.shape[0]:
      raise DataError(f"{images.shape[0]} images but {labels.shape[0]} "
                      "labels: the image and label files do not belong together")
    self._images = images
    self._labels = labels
    self._num_examples = images.shape[0]
    self._rng = np.random.default_rng(seed)
    self._order = np.arange(self._num_examples)
    self._epochs_completed = 0
    self._index_in_epoch = 0

  @property
  def images(self) -> np.ndarray:
    return self._images

  @property
  def labels(self) -> np.ndarray:
    return self._labels

  @property
  def num_examples(self) -> int:
    return self._num_examples

  @property
  def epochs_completed(self) -> int:
    return self._epochs_completed

  def next_batch(self, batch_size: int, shuffle: bool = True):
    """The next `batch_size` examples, as TF 1.x's DataSet.next_batch."""
    start = self._index_in_epoch
    if self._epochs_completed == 0 and start == 0 and shuffle:
      self._order = self._rng.permutation(self._num_examples)
    if start + batch_size <= self._num_examples:
      self._index_in_epoch += batch_size
      return self._take(self._order[start:self._index_in_epoch])
    # The batch straddles the epoch end: the old epoch's rest, then the
    # start of a freshly shuffled one.
    self._epochs_completed += 1
    rest = self._order[start:]
    if shuffle:
      self._order = self._rng.permutation(self._num_examples)
    self._index_in_epoch = batch_size - rest.size
    return self._take(np.concatenate([rest, self._order[:self._index_in_epoch]]))

  def _take(self, indices: np.ndarray):
    return self._images[indices], self._labels[indices]

  def state(self) -> dict:
    """Everything that decides the batches to come (for checkpoints)."""
    return {"rng": self._rng.bit_generator.state, "order": self._order.copy(),
            "epochs_completed": self._epochs_completed,
            "index_in_epoch": self._index_in_epoch}

  def restore(self, state: dict) -> None:
    self._rng.bit_generator.state = state["rng"]
    self._order = np.asarray(state["order"])
    self._epochs_completed = int(state["epochs_completed"])
    self._index_in_epoch = int(state["index_in_epoch"])


@dataclasses.dataclass
class Datasets:
  train: DataSet
  validation: DataSet
  test: DataSet


def split_seeds(seed: Optional[int]):
  """The train, validation and test splits' generator seeds for `seed`."""
  return np.random.SeedSequence(seed).spawn(3)


def read_data_sets(train_dir: Optional[str] = None,
                   one_hot: bool = False,
                   dtype=np.float32,
                   reshape: bool = True,
                   validation_size: int = 5000,
                   seed: Optional[int] = None,
                   train_limit: Optional[int] = None,
                   source_urls: Sequence[str] = SOURCE_URLS) -> Datasets:
  """TF 1.x's `input_data.read_data_sets`, downloading what is missing.

  Args:
    train_dir: where the files are (or go); None resolves --data_dir style
      (see `resolve_data_dir`).
    one_hot: float32 one-hot labels instead of uint8 class ids.
    dtype: np.float32 scales pixels to [0, 1]; np.uint8 keeps 0..255.
    reshape: flatten images to [count, 784].
    validation_size: how many of the first training images form validation.
    seed: makes the batch order repeatable; each split gets its own generator.
    train_limit: keep only the first N training examples (smoke runs, tests).
    source_urls: mirrors to download from, in order.
  """
  directory = resolve_data_dir(train_dir)
  dtype = np.dtype(dtype)
  if dtype not in (np.float32, np.uint8):
    raise DataError(f"dtype {dtype} is not supported: use float32 or uint8")
  maybe_download(directory, source_urls)
  path = lambda name: os.path.join(directory, name)  # noqa: E731
  train_images = extract_images(path(TRAIN_IMAGES))
  train_labels = extract_labels(path(TRAIN_LABELS), one_hot=one_hot)
  test_images = extract_images(path(TEST_IMAGES))
  test_labels = extract_labels(path(TEST_LABELS), one_hot=one_hot)

  if not 0 <= validation_size <= len(train_images):
    raise DataError(f"validation_size {validation_size} is out of range: use "
                    f"0..{len(train_images)}")

  def prepare(images):
    if reshape:
      images = images.reshape(images.shape[0], -1)
    if dtype == np.float32:
      images = images.astype(np.float32)
      images *= np.float32(1.0 / 255.0)  # in place: one float copy, not two
    return images

  # Convert once, then split by views: no image array is ever copied twice.
  train_images = prepare(train_images)
  validation = (train_images[:validation_size], train_labels[:validation_size])
  train = (train_images[validation_size:], train_labels[validation_size:])
  if train_limit is not None:
    if not 1 <= train_limit <= len(train[0]):
      raise DataError(f"train_limit {train_limit} is out of range: use "
                      f"1..{len(train[0])}")
    train = (train[0][:train_limit], train[1][:train_limit])
  train_seed, validation_seed, test_seed = split_seeds(seed)
  return Datasets(train=DataSet(*train, seed=train_seed),
                  validation=DataSet(*validation, seed=validation_seed),
                  test=DataSet(prepare(test_images), test_labels, seed=test_seed))
