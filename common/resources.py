"""Whether a model fits in memory, judged before TensorFlow is imported.

A model too large for the machine would otherwise fail seconds or minutes
later, after the import, with TensorFlow's multi-line ResourceExhaustedError
(or the kernel's OOM killer). The estimate counts what both ports hold for
the MLP: its float32 parameters several times over and the activations of
the largest batch it runs. It is meant to refuse what cannot fit, not to
predict a run's peak to the byte.
"""

from typing import Optional, Sequence

from common import hparams as hp

_FLOAT32_BYTES = 4
# The parameters' copies: the variables, their gradients, the initializer's
# random tensor, and the copy read back to save or return them; Adam keeps
# two slots more.
_PARAMETER_COPIES = {"gd": 4, "adam": 6}
# Activations per unit and example: pre-activation, activation, gradient.
_ACTIVATION_COPIES = 3
# The test set is evaluated in one batch (as TF1's tutorial did).
_TEST_EXAMPLES = 10000

_CGROUP_V2 = "/sys/fs/cgroup"
_CGROUP_V1 = "/sys/fs/cgroup/memory"


def model_bytes(hidden_units: Sequence[int], optimizer: str,
                batch_size: int) -> int:
  """About the bytes a run of this MLP holds at its peak.

  Args:
    hidden_units: the hidden layer sizes, e.g. (256, 128, 256).
    optimizer: "gd" or "adam" (Adam's two slots per parameter).
    batch_size: examples per training step.
  Returns:
    The estimate in bytes.
  """
  sizes = hp.layer_sizes(hidden_units)
  parameters = sum((fan_in + 1) * fan_out
                   for fan_in, fan_out in zip(sizes, sizes[1:]))
  units = sum(sizes[1:])
  rows = max(batch_size, _TEST_EXAMPLES)
  return _FLOAT32_BYTES * (_PARAMETER_COPIES[optimizer] * parameters
                           + _ACTIVATION_COPIES * rows * units)


def _read_int(path: str) -> Optional[int]:
  try:
    with open(path, encoding="ascii") as f:
      text = f.read().split()[0]
  except (OSError, IndexError, UnicodeDecodeError):
    return None
  return int(text) if text.isdigit() else None  # cgroup v2 says "max"


def available_bytes() -> Optional[int]:
  """The memory this process can still take: the smaller of the kernel's
  MemAvailable and what its cgroup's limit leaves; None if neither is known."""
  candidates = []
  try:
    with open("/proc/meminfo", encoding="ascii") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          candidates.append(int(line.split()[1]) * 1024)
  except (OSError, ValueError, IndexError):
    pass
  for limit, usage in ((f"{_CGROUP_V2}/memory.max", f"{_CGROUP_V2}/memory.current"),
                       (f"{_CGROUP_V1}/memory.limit_in_bytes",
                        f"{_CGROUP_V1}/memory.usage_in_bytes")):
    limit_value, usage_value = _read_int(limit), _read_int(usage)
    # cgroup v1 says "no limit" with a number near 2**63.
    if limit_value is not None and usage_value is not None and limit_value < 2**60:
      candidates.append(max(limit_value - usage_value, 0))
  return min(candidates) if candidates else None


def describe_bytes(n: float) -> str:
  """1536 -> "1.5 KB"; powers of 1024, as free(1) -h shows them."""
  for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
    if n < 1024 or unit == "PB":
      return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
    n /= 1024
  raise AssertionError("unreachable")


def refuse_model(hidden_units: Sequence[int], optimizer: str,
                 batch_size: int) -> Optional[str]:
  """The error line if the model does not fit in available memory, else None."""
  available = available_bytes()
  needed = model_bytes(hidden_units, optimizer, batch_size)
  if available is None or needed <= available:
    return None
  return (f"--hidden_units {','.join(map(str, hidden_units))} needs about "
          f"{describe_bytes(needed)} of memory (float32 weights, gradients, "
          f"{'Adam slots, ' if optimizer == 'adam' else ''}activations), more "
          f"than the {describe_bytes(available)} available here; use smaller "
          "layers")
