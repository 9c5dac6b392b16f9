"""The MNIST data layer: the real files, TF 1.x batch semantics, damaged files.

Expected values come from an independent reader of the IDX files (gzip +
struct below) or from TF 1.x's documented behaviour, never from the loader.
"""

import gzip
import os
import struct

import numpy as np
import numpy.testing as npt
import pytest

from common import input_data
from common.input_data import DataError
from common.input_data import DataSet

SPLIT_SIZES = {"train": 55000, "validation": 5000, "test": 10000}


def read_idx(path):
  """Reads a gzip'd IDX file with gzip + struct only (independent of the loader)."""
  with gzip.open(path, "rb") as f:
    data = f.read()
  zeros, type_code, ndim = struct.unpack(">HBB", data[:4])
  assert (zeros, type_code) == (0, 0x08)  # 0x08: unsigned bytes
  dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
  return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, magic, dims, payload: bytes):
  """Writes a gzip'd IDX file with any header, consistent or not."""
  with gzip.open(path, "wb") as f:
    f.write(struct.pack(f">I{len(dims)}I", magic, *dims) + payload)


@pytest.fixture(scope="module")
def raw(data_dir):
  """The four files as the independent reader sees them."""
  path = lambda name: os.path.join(data_dir, name)  # noqa: E731
  return {
      "train_images": read_idx(path(input_data.TRAIN_IMAGES)),
      "train_labels": read_idx(path(input_data.TRAIN_LABELS)),
      "test_images": read_idx(path(input_data.TEST_IMAGES)),
      "test_labels": read_idx(path(input_data.TEST_LABELS)),
  }


@pytest.fixture(scope="module")
def float_sets(full_mnist):
  """What the homework scripts load: float32 pixels, one-hot labels, flat
  (conftest reads it so, with read_data_sets, once a session)."""
  return full_mnist


@pytest.fixture(scope="module")
def byte_sets(data_dir):
  """The other corner of the options: uint8 pixels, class ids, 28x28."""
  return input_data.read_data_sets(data_dir, dtype=np.uint8, reshape=False)


def splits(data_sets):
  return {name: getattr(data_sets, name) for name in SPLIT_SIZES}


# ---------------------------------------------------------------- real files


def test_split_shapes_and_dtypes(float_sets, byte_sets):
  for name, n in SPLIT_SIZES.items():
    flat, square = splits(float_sets)[name], splits(byte_sets)[name]
    assert flat.num_examples == square.num_examples == n, name
    assert flat.images.shape == (n, 784) and flat.images.dtype == np.float32
    assert flat.labels.shape == (n, 10) and flat.labels.dtype == np.float32
    assert square.images.shape == (n, 28, 28) and square.images.dtype == np.uint8
    assert square.labels.shape == (n,) and square.labels.dtype == np.uint8
    assert flat.epochs_completed == 0


def test_float_pixels_are_the_bytes_scaled_to_unit_range(float_sets, byte_sets):
  for name in SPLIT_SIZES:
    flat, square = splits(float_sets)[name], splits(byte_sets)[name]
    assert flat.images.min() == 0.0 and flat.images.max() == 1.0, name
    scaled = square.images.reshape(-1, 784).astype(np.float32) / np.float32(255)
    assert np.abs(flat.images - scaled).max() <= 2e-7, name  # float32 rounding


def test_training_pixel_mean(float_sets):
  assert abs(float_sets.train.images.mean(dtype=np.float64) - 0.1307) <= 1e-4


def test_one_hot_labels_match_the_class_ids(float_sets, byte_sets):
  for name in SPLIT_SIZES:
    one_hot, ids = splits(float_sets)[name].labels, splits(byte_sets)[name].labels
    assert set(np.unique(one_hot)) == {0.0, 1.0}, name
    npt.assert_array_equal(one_hot.sum(axis=1), 1.0)
    npt.assert_array_equal(one_hot.argmax(axis=1), ids)


def test_label_counts_match_the_raw_label_files(raw, float_sets, byte_sets):
  train_labels = raw["train_labels"]
  expected = {"train": np.bincount(train_labels[5000:], minlength=10),
              "validation": np.bincount(train_labels[:5000], minlength=10),
              "test": np.bincount(raw["test_labels"], minlength=10)}
  for name, n in SPLIT_SIZES.items():
    assert expected[name].sum() == n, name
    npt.assert_array_equal(
        np.bincount(splits(byte_sets)[name].labels, minlength=10), expected[name])
    npt.assert_array_equal(splits(float_sets)[name].labels.sum(axis=0),
                           expected[name])


def test_validation_is_the_first_5000_training_images(raw, byte_sets):
  npt.assert_array_equal(byte_sets.validation.images, raw["train_images"][:5000])
  npt.assert_array_equal(byte_sets.validation.labels, raw["train_labels"][:5000])
  npt.assert_array_equal(byte_sets.train.images, raw["train_images"][5000:])
  npt.assert_array_equal(byte_sets.train.labels, raw["train_labels"][5000:])
  npt.assert_array_equal(byte_sets.test.images, raw["test_images"])
  npt.assert_array_equal(byte_sets.test.labels, raw["test_labels"])


def test_train_limit_keeps_the_first_examples(data_dir, raw):
  limited = input_data.read_data_sets(data_dir, dtype=np.uint8, train_limit=1000)
  assert limited.train.num_examples == 1000
  npt.assert_array_equal(limited.train.images,
                         raw["train_images"][5000:6000].reshape(1000, 784))
  npt.assert_array_equal(limited.train.labels, raw["train_labels"][5000:6000])
  assert limited.validation.num_examples == 5000
  assert limited.test.num_examples == 10000
  for train_limit in (0, 55001):
    with pytest.raises(DataError, match=f"train_limit {train_limit} is out of range"):
      input_data.read_data_sets(data_dir, dtype=np.uint8, train_limit=train_limit)


def test_validation_size_range(data_dir):
  whole = input_data.read_data_sets(data_dir, dtype=np.uint8, validation_size=0)
  assert (whole.train.num_examples, whole.validation.num_examples) == (60000, 0)
  for validation_size in (-1, 60001):
    with pytest.raises(DataError, match=f"validation_size {validation_size} is "
                       r"out of range: use 0\.\.60000"):
      input_data.read_data_sets(data_dir, dtype=np.uint8,
                                validation_size=validation_size)


# ---------------------------------------------------------------- next_batch


def id_data_set(n, seed=0):
  """A DataSet whose label is each example's index and whose image holds it too."""
  ids = np.arange(n)
  return DataSet(np.stack([ids, -ids], axis=1), ids, seed=seed)


def draw(data_set, batch_size, count, shuffle=True):
  """`count` batches' ids, and epochs_completed after each batch."""
  batches, epochs = [], []
  for _ in range(count):
    images, labels = data_set.next_batch(batch_size, shuffle=shuffle)
    assert labels.shape == (batch_size,)
    npt.assert_array_equal(images[:, 0], labels)  # pairs never come apart
    npt.assert_array_equal(images[:, 1], -labels)
    batches.append(labels)
    epochs.append(data_set.epochs_completed)
  return batches, epochs


def test_first_epoch_is_shuffled_at_its_first_batch():
  data_set = id_data_set(1000)
  images_before = data_set.images.copy()
  (first,), _ = draw(data_set, 300, 1)
  assert len(set(first)) == 300
  assert not np.array_equal(np.sort(first), np.arange(300))
  npt.assert_array_equal(data_set.images, images_before)  # never permuted in place
  # The first call decides: unshuffled if it asks for file order.
  (first,), _ = draw(id_data_set(1000), 300, 1, shuffle=False)
  npt.assert_array_equal(first, np.arange(300))


@pytest.mark.parametrize("n, batch_size", [
    (1000, 100),    # divides N
    (1000, 300),    # does not: every 4th batch or so straddles
    (55000, 128),   # MNIST's size with a batch that does not divide it
])
def test_every_epoch_visits_every_example_once(n, batch_size):
  count = 3 * n // batch_size + 1  # past the end of the third epoch
  batches, epochs = draw(id_data_set(n), batch_size, count)
  stream = np.concatenate(batches)
  epoch_orders = [stream[k * n:(k + 1) * n] for k in range(3)]
  for order in epoch_orders:
    npt.assert_array_equal(np.sort(order), np.arange(n))
  # Reshuffled at every epoch end, not replayed.
  assert not np.array_equal(epoch_orders[0], epoch_orders[1])
  assert not np.array_equal(epoch_orders[1], epoch_orders[2])
  # TF 1.x counts an epoch when a batch reaches past its end; a batch that
  # ends exactly on it does not count yet.
  expected = [(k * batch_size - 1) // n for k in range(1, count + 1)]
  assert epochs == expected


def test_straddling_batch_is_old_rest_then_new_start():
  n, batch_size = 1000, 300
  data_set = id_data_set(n)
  batches, epochs = draw(data_set, batch_size, 7)
  assert epochs == [0, 0, 0, 1, 1, 1, 2]
  straddling = batches[3]
  seen = np.concatenate(batches[:3])
  npt.assert_array_equal(np.sort(straddling[:100]), np.setdiff1d(np.arange(n), seen))
  # The other 200 open the new epoch, which batches 5-7 continue without a
  # repeat until it is complete.
  second_epoch = np.concatenate([straddling[100:], *batches[4:6], batches[6][:200]])
  npt.assert_array_equal(np.sort(second_epoch), np.arange(n))


def test_unshuffled_batches_keep_file_order():
  batches, epochs = draw(id_data_set(1000), 300, 4, shuffle=False)
  npt.assert_array_equal(np.concatenate(batches[:3]), np.arange(900))
  npt.assert_array_equal(batches[3], np.r_[900:1000, 0:200])
  assert epochs == [0, 0, 0, 1]


def test_seed_decides_the_batch_sequence():
  def sequence(seed):
    return np.concatenate(draw(id_data_set(1000, seed), 300, 10)[0])
  npt.assert_array_equal(sequence(7), sequence(7))
  assert not np.array_equal(sequence(7), sequence(8))
  assert not np.array_equal(sequence(None), sequence(None))


def test_read_data_sets_seed_repeats_every_split(data_dir):
  def first_batches(seed):
    sets = input_data.read_data_sets(data_dir, dtype=np.uint8, seed=seed,
                                     train_limit=2000)
    return [s.next_batch(300)[1] for s in (sets.train, sets.validation, sets.test)
            for _ in range(8)]
  seed_3 = first_batches(3)
  for a, b in zip(seed_3, first_batches(3)):
    npt.assert_array_equal(a, b)
  assert all(not np.array_equal(a, b) for a, b in zip(seed_3, first_batches(4)))


def test_data_sets_leave_numpys_global_generator_alone():
  def sequence():
    return np.concatenate(draw(id_data_set(1000, seed=5), 300, 10)[0])
  np.random.seed(0)
  state = np.random.get_state()
  first = sequence()
  draw(id_data_set(1000, seed=None), 300, 10)
  after = np.random.get_state()
  assert state[0] == after[0]
  npt.assert_array_equal(state[1], after[1])
  assert state[2:] == after[2:]
  np.random.seed(1)  # a different global state changes nothing
  npt.assert_array_equal(sequence(), first)


def test_image_label_count_mismatch():
  with pytest.raises(DataError, match="10 images but 9 labels"):
    DataSet(np.zeros((10, 784), np.float32), np.zeros(9, np.uint8))


# ---------------------------------------------------------------- bad files


def test_truncated_gzip(data_dir, tmp_path):
  for name, extract in ((input_data.TEST_IMAGES, input_data.extract_images),
                        (input_data.TEST_LABELS, input_data.extract_labels)):
    with open(os.path.join(data_dir, name), "rb") as f:
      whole = f.read()
    path = tmp_path / name
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(DataError) as caught:
      extract(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path} is not a readable gzip file")
    assert "\n" not in message


def test_idx_data_shorter_or_longer_than_its_header(tmp_path):
  short = tmp_path / "short.gz"
  write_idx(short, 2051, (3, 28, 28), bytes(2 * 784))
  with pytest.raises(DataError, match="holds 1568 bytes of data, its header "
                     "promises 2352"):
    input_data.extract_images(str(short))
  long = tmp_path / "long.gz"
  write_idx(long, 2049, (3,), bytes(4))
  with pytest.raises(DataError, match="holds 4 bytes of data, its header promises 3"):
    input_data.extract_labels(str(long))
  header_only = tmp_path / "header_only.gz"
  with gzip.open(header_only, "wb") as f:
    f.write(struct.pack(">II", 2051, 3))
  with pytest.raises(DataError, match="truncated: no complete IDX header"):
    input_data.extract_images(str(header_only))


def test_wrong_idx_magic_number(tmp_path):
  labels = tmp_path / "labels.gz"
  write_idx(labels, 2049, (20,), bytes(range(20)))
  npt.assert_array_equal(input_data.extract_labels(str(labels)), np.arange(20))
  with pytest.raises(DataError, match="magic number 2049, expected 2051: it is "
                     "not an MNIST image file"):
    input_data.extract_images(str(labels))
  images = tmp_path / "images.gz"
  write_idx(images, 2051, (1, 2, 2), bytes(4))
  with pytest.raises(DataError, match="magic number 2051, expected 2049: it is "
                     "not an MNIST label file"):
    input_data.extract_labels(str(images))
  garbage = tmp_path / "garbage.gz"
  write_idx(garbage, 0x12345678, (1,), bytes(1))
  with pytest.raises(DataError, match=f"magic number {0x12345678}, expected 2049"):
    input_data.extract_labels(str(garbage))


def test_dense_to_one_hot():
  encoded = input_data.dense_to_one_hot(np.array([3, 0, 9], np.uint8))
  assert encoded.dtype == np.float32
  expected = np.zeros((3, 10), np.float32)
  expected[[0, 1, 2], [3, 0, 9]] = 1
  npt.assert_array_equal(encoded, expected)
