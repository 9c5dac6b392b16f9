"""Which machine a run's numbers came from: a small fingerprint.

A seeded run repeats bit for bit across processes on the same kind of
machine. Across kinds it need not: TensorFlow's kernels (oneDNN's matmul
above all) choose their instructions by CPU, each choice rounds float32
sums its own way, and the chaotic training does the rest within about 50
steps. So every record of a run's numbers (a sweep's runs.jsonl, a
--checkpoint_dir's hparams.json, the bench's results.json) carries this
fingerprint, and two records are expected to agree digit for digit only
when their `numerics` keys are equal.

  fingerprint() - the CPU, the instruction sets the kernels choose by, the
                  cores, the library versions and the kernel and thread
                  settings of this process (read from its environment, as
                  TensorFlow reads them when it starts).
  numerics()    - the part of a fingerprint that decides the numbers.
  describe()    - one line for people.
"""

import hashlib
import importlib.metadata
import json
import os
import platform
from typing import Dict, List, Optional

# The instruction sets TensorFlow's CPU kernels (oneDNN, Eigen) pick code
# paths by, as /proc/cpuinfo names them (x86 "flags", Arm "Features").
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
             "avx512vl", "avx512dq", "avx512_vnni", "avx_vnni", "avx512_bf16",
             "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
             "asimd", "asimddp", "sve", "sve2", "bf16", "i8mm")
LIBRARIES = ("tensorflow", "keras", "numpy")
# The environment that sets TensorFlow's kernels and threads at start-up.
SETTINGS = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA",
            "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def _cpuinfo() -> Dict[str, str]:
  """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
  fields = {}
  try:
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
      for line in f:
        if not line.strip():
          break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
  except OSError:
    pass
  return fields


def _cpu(info: Dict[str, str]) -> str:
  name = info.get("model name") or platform.processor() or platform.machine()
  ids = [f"{key} {info[key]}" for key in ("cpu family", "model") if key in info]
  return f"{name} ({', '.join(ids)})" if ids else name


def _version(library: str) -> Optional[str]:
  try:
    return importlib.metadata.version(library)
  except importlib.metadata.PackageNotFoundError:
    return None


def fingerprint(environ=None) -> dict:
  """This machine and this process's kernel settings, as JSON values."""
  environ = os.environ if environ is None else environ
  info = _cpuinfo()
  flags = set((info.get("flags") or info.get("Features") or "").split())
  return {"cpu": _cpu(info),
          "isa": [flag for flag in ISA_FLAGS if flag in flags],
          "cores": len(os.sched_getaffinity(0)),
          "system": f"{platform.system()} {platform.machine()}",
          "python": platform.python_version(),
          **{library: _version(library) for library in LIBRARIES},
          "settings": {name: environ[name] for name in SETTINGS if name in environ}}


def _intra_op_threads(fp: dict) -> int:
  """The threads one op may use: the setting, or TensorFlow's one per core."""
  return int(fp["settings"].get("TF_NUM_INTRAOP_THREADS") or 0) or fp["cores"]


def numerics(fp: Optional[dict]) -> Optional[str]:
  """What decides a seeded run's numbers, as a short key; None if unknown.

  The library versions, the intra-op threads (how sums are split), the
  kernel settings and, unless they cap the instruction set, the CPU and
  its instruction sets. Inter-op threads and the core count beyond that
  change only what overlaps, not a number.
  """
  if not fp:
    return None
  settings = fp["settings"]
  key = {**{library: fp.get(library) for library in LIBRARIES},
         "intra_op_threads": _intra_op_threads(fp),
         "onednn_opts": settings.get("TF_ENABLE_ONEDNN_OPTS"),
         "max_isa": settings.get("ONEDNN_MAX_CPU_ISA")}
  if not key["max_isa"]:
    key.update(cpu=fp["cpu"], isa=fp["isa"])
  text = json.dumps(key, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def describe(fp: Optional[dict]) -> str:
  """"Intel(R) Xeon(R) ... (cpu family 6, model 143), AVX-512 ..., 2 cores; ..."."""
  if not fp:
    return "a machine not recorded"
  isa: List[str] = fp["isa"]
  features = "/".join(name for flag, name in (
      ("avx2", "AVX2"), ("avx512f", "AVX-512"), ("amx_tile", "AMX"),
      ("asimd", "NEON"), ("sve", "SVE")) if flag in isa)
  settings = fp["settings"]
  kernels = ("oneDNN ops " + ("off" if settings.get("TF_ENABLE_ONEDNN_OPTS") == "0"
                              else "by default")
             + (f", oneDNN capped at {settings['ONEDNN_MAX_CPU_ISA']}"
                if settings.get("ONEDNN_MAX_CPU_ISA") else ""))
  threads = _intra_op_threads(fp)
  return (f"{fp['cpu']}{', ' + features if features else ''}, {fp['cores']} cores; "
          f"TensorFlow {fp.get('tensorflow')}, Keras {fp.get('keras')}, "
          f"numpy {fp.get('numpy')}; {kernels}; {threads} intra-op "
          f"thread{'s' if threads != 1 else ''}")
