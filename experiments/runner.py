"""Runs many training runs (ports x hyper-parameters x seeds) and records each
as one JSON line, so that an interrupted sweep continues where it stopped.

A run is one port's `run_training` with one `HParams` (the seed included),
exactly what `python -m {port}.{script} --seed N ...` trains (common/cli.py):
the port's own interface (common/ports.py, migration/ports.py), its images
read as the port asks for them, but inside a worker process that imported
TensorFlow once: a fresh process per run would add 7-10 s of start-up to
every 20-60 s run.

Whole runs go to worker processes, one per core, each limited to one
TensorFlow thread. The layers are too small (batch 100) for intra-op threads
to pay: measured here (2 cores, hw05, 2 epochs), a run took as long on one
thread as on two, and two single-threaded runs side by side keep both cores
busy. A run's result depends on the thread count (float32 sums split
differently, then chaos), so a record says how many threads it used; with
one, as the commands' default --threads=1, a record is what the command
prints for the same seed on the same kind of CPU.
"""

import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import multiprocessing
import os
import signal
import sys
import time
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple


from common import console
from common import errors
from common import hparams as hp
from common import input_data
from common import machine
from common import ports
from migration.ports import PORTS

RUNS_FILE = "runs.jsonl"

# One intra-op thread, as the commands' default --threads=1 (so a record is
# what `make <port>-<script> ARGS=--seed=N` prints); one inter-op thread
# too, since the workers already keep every core busy.
SINGLE_THREAD_ENV = {**console.thread_environment(1),
                     "TF_NUM_INTEROP_THREADS": "1",
                     "OMP_NUM_THREADS": "1"}


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run: a port and every hyper-parameter, the seed included."""
  port: str  # a name in PORTS
  hparams: hp.HParams

  @property
  def key(self) -> str:
    """Identifies the run in runs.jsonl, whatever configuration asked for it."""
    return json.dumps({"port": self.port, **dataclasses.asdict(self.hparams)},
                      sort_keys=True)


@dataclasses.dataclass(frozen=True)
class Scale:
  """Shrinks every run of a sweep alike (tests, dry runs); None = as defined."""
  training_epochs: Optional[int] = None
  train_limit: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class Config:
  """A named set of hyper-parameters: a script's defaults plus changes."""
  label: str
  script: str  # "hw04" or "hw05"
  changes: Tuple[Tuple[str, object], ...] = ()

  def hparams(self, seed: int, scale: Scale = Scale()) -> hp.HParams:
    changes = dict(self.changes, seed=seed)
    for name in ("training_epochs", "train_limit"):
      if getattr(scale, name) is not None:
        changes[name] = getattr(scale, name)
    return dataclasses.replace(hp.SCRIPTS[self.script], **changes)

  def runs(self, ports: Sequence[str], seeds: Sequence[int],
           scale: Scale = Scale()) -> List["Run"]:
    return [Run(port, self.hparams(seed, scale)) for port in ports for seed in seeds]

  def records(self, port: str, seeds: Sequence[int], records: Dict[str, dict],
              scale: Scale = Scale()) -> List[Optional[dict]]:
    """This configuration's records for `seeds`, None where not run yet."""
    return [records.get(Run(port, self.hparams(seed, scale)).key) for seed in seeds]


def run_from_record(record: dict) -> Run:
  fields = dict(record["hparams"])
  fields["hidden_units"] = tuple(fields["hidden_units"])
  return Run(record["port"], hp.HParams(**fields))


def is_collapsed(accuracy: Optional[float]) -> bool:
  """Below the seed's 90% line, or diverged (no accuracy at all)."""
  return accuracy is None or accuracy < hp.COLLAPSE_THRESHOLD


# ---------------------------------------------------------------- in a worker


def fresh_data_sets(data_sets: input_data.Datasets,
                    seed: Optional[int]) -> input_data.Datasets:
  """The same arrays with new batch generators, seeded as
  `input_data.read_data_sets(..., seed=seed)` seeds them: each run starts
  from its own batch order, whatever ran before (no image is copied)."""
  train_seed, validation_seed, test_seed = input_data.split_seeds(seed)

  def rewrap(data_set, data_seed):
    return input_data.DataSet(data_set.images, data_set.labels, seed=data_seed)
  return input_data.Datasets(train=rewrap(data_sets.train, train_seed),
                             validation=rewrap(data_sets.validation, validation_seed),
                             test=rewrap(data_sets.test, test_seed))


_data_cache: Dict[tuple, input_data.Datasets] = {}


def _data_sets(port: ports.Port, data_dir: Optional[str],
               hparams: hp.HParams) -> input_data.Datasets:
  """MNIST read once per worker (and image dtype and train_limit) as `port`
  reads it, rewrapped per run."""
  cache_key = (data_dir, port.image_dtype, hparams.train_limit)
  if cache_key not in _data_cache:
    _data_cache[cache_key] = port.read_data_sets(data_dir, hparams)
  return fresh_data_sets(_data_cache[cache_key], hparams.seed)


def _silent(*unused_args, **unused_kwargs):
  pass


def train_once(run: Run, data_dir: Optional[str]) -> dict:
  """Trains `run` in this process; returns its record (see `run_sweep`)."""
  import keras  # pylint: disable=g-import-not-at-top
  port = PORTS[run.port]
  keras.backend.clear_session()  # as in a process of its own
  data_sets = _data_sets(port, data_dir, run.hparams)
  return _record(run.key, run.port, run.hparams, lambda: port.run_training(
      run.hparams, data_sets, print_fn=_silent))


def train_migrated(run: Run, data_dir: Optional[str], switch_epoch: int,
                   to_port: str = "modern") -> dict:
  """Trains `run` to epoch `switch_epoch` in its port, then in `to_port`.

  Between the two, the run's --checkpoint_dir is carried over with its
  optimizer state (migration/optimizer_state.py), as the migrate commands
  carry it; the second port resumes it to `run.hparams.training_epochs`.
  Returns its record, its port "legacy, then modern".
  """
  import keras  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  from migration import optimizer_state  # pylint: disable=g-import-not-at-top
  read = {"legacy": optimizer_state.read_legacy_run,
          "modern": optimizer_state.read_modern_run}[run.port]
  write = {"legacy": optimizer_state.write_legacy_run,
           "modern": optimizer_state.write_modern_run}[to_port]
  keras.backend.clear_session()

  def train(port_name, hparams, directory):
    port = PORTS[port_name]
    return port.run_training(hparams, _data_sets(port, data_dir, hparams),
                             checkpoint_dir=directory, print_fn=_silent)

  def both():
    with tempfile.TemporaryDirectory(prefix="migrated-run-") as root:
      before, after = os.path.join(root, run.port), os.path.join(root, to_port)
      train(run.port, dataclasses.replace(run.hparams, training_epochs=switch_epoch),
            before)
      write(read(before), after)
      return train(to_port, run.hparams, after)
  key = json.dumps({"then": to_port, "switch_epoch": switch_epoch,
                    **json.loads(run.key)}, sort_keys=True)
  return _record(key, f"{run.port}, then {to_port}", run.hparams, both)


def _record(key: str, port: str, hparams: hp.HParams, train) -> dict:
  """The record of the run `train()` trains (a port's TrainingResult)."""
  start = time.monotonic()
  error = None
  try:
    result = train()
    epoch_costs, accuracy = [float(c) for c in result.epoch_costs], float(result.accuracy)
  except errors.NonFiniteCostError as e:
    epoch_costs, accuracy, error = [], None, str(e)
  return {"key": key, "port": port,
          "hparams": dataclasses.asdict(hparams),
          "epoch_costs": epoch_costs, "accuracy": accuracy,
          "collapsed": is_collapsed(accuracy), "error": error,
          "seconds": round(time.monotonic() - start, 2),
          "threads": int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0")) or None,
          # What the numbers came from: a seed repeats them on this kind only.
          "machine": machine.fingerprint()}


def _start_worker():
  # Ctrl-C reaches the whole process group: the parent alone handles it
  # (stops the workers, says one line), not every worker with a traceback.
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  # The programs' lines would interleave on the console: the parent reports
  # each run instead. TensorFlow is imported quietly, once, here.
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, sys.stdout.fileno())
  os.close(devnull)
  console.import_tensorflow()


# ---------------------------------------------------------------- the pool


@contextlib.contextmanager
def _environment(changes: Dict[str, str]):
  saved = {name: os.environ.get(name) for name in changes}
  os.environ.update(changes)
  try:
    yield
  finally:
    for name, value in saved.items():
      if value is None:
        del os.environ[name]
      else:
        os.environ[name] = value


def worker_environment(kernels: str = "native") -> Dict[str, str]:
  """What each worker sets before it imports TensorFlow (--kernels)."""
  return {**SINGLE_THREAD_ENV, **console.kernel_environment(kernels)}


@contextlib.contextmanager
def worker_pool(workers: int,
                kernels: str = "native") -> Iterator[concurrent.futures.Executor]:
  """`workers` processes, each training on one TensorFlow thread."""
  # "spawn": a fork of a process that already runs TensorFlow is unsafe.
  # Workers start on the first submit and inherit the environment then,
  # before they import TensorFlow; this process gets it back unchanged.
  context = multiprocessing.get_context("spawn")
  with _environment(worker_environment(kernels)), concurrent.futures.ProcessPoolExecutor(
      max_workers=workers, mp_context=context,
      initializer=_start_worker) as pool:
    try:
      yield pool
    except BaseException:
      # Interrupted: the runs in flight are lost anyway; do not wait minutes
      # for them to finish.
      pool.shutdown(wait=False, cancel_futures=True)
      for process in list((pool._processes or {}).values()):  # pylint: disable=protected-access
        process.terminate()
      raise


def cpu_count() -> int:
  """The cores this process may run on (not the machine's total)."""
  return len(os.sched_getaffinity(0))


# ---------------------------------------------------------------- records


def read_records(out_dir: str) -> Dict[str, dict]:
  """{run key: record} from out_dir/runs.jsonl; {} if there is none yet.

  A last line cut short (a process killed while writing it) is ignored:
  that run is simply run again.
  """
  path = os.path.join(out_dir, RUNS_FILE)
  records = {}
  if not os.path.exists(path):
    return records
  with open(path, encoding="utf-8", errors="replace") as f:
    for number, line in enumerate(f, 1):
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue
      missing = _missing_fields(record)
      if missing:
        raise errors.UserError(
            f"{path} line {number} is not a run record (no {missing!r}); "
            "delete that line to run that run again, or move the file aside")
      records[record["key"]] = record
  return records


# What the reports read of each record, and the JSON type it must have.
_RECORD_FIELDS = {"key": str, "port": str, "hparams": dict, "epoch_costs": list,
                  "accuracy": (int, float, type(None)), "collapsed": bool,
                  "seconds": (int, float)}


def _missing_fields(record) -> Optional[str]:
  """The first field `record` lacks (or has of the wrong type), else None."""
  if not isinstance(record, dict):
    return "key"
  for name, kind in _RECORD_FIELDS.items():
    if not isinstance(record.get(name), kind):
      return name
  return None


def _append_record(out_dir: str, record: dict) -> None:
  """One line, written at once and flushed to disk before the next run."""
  path = os.path.join(out_dir, RUNS_FILE)
  line = json.dumps(record, sort_keys=True) + "\n"
  # A line cut short earlier must not swallow this one.
  needs_newline = False
  if os.path.exists(path) and os.path.getsize(path):
    with open(path, "rb") as f:
      f.seek(-1, os.SEEK_END)
      needs_newline = f.read(1) != b"\n"
  with open(path, "a") as f:
    f.write(("\n" if needs_newline else "") + line)
    f.flush()
    os.fsync(f.fileno())


def describe_run(run: Run) -> str:
  """"legacy adam init=uniform:1.0 ... seed 3": enough to tell runs apart."""
  h = run.hparams
  optimizer = (f"adam {h.learning_rate:g}/{h.beta1:g}/{h.beta2:g}/{h.epsilon:g}"
               if h.optimizer == "adam" else f"gd {h.learning_rate:g}")
  dropout = f"keep {h.keep_prob:g} {h.dropout_layers}" if h.keep_prob < 1 else "no dropout"
  return (f"{run.port} {optimizer}, {h.init} / {h.bias_init}, {dropout}, "
          f"seed {h.seed}")


def _duration(seconds: float) -> str:
  minutes, seconds = divmod(round(seconds), 60)
  return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def worker_fingerprint(kernels: str = "native") -> dict:
  """The machine.fingerprint the workers will record."""
  return machine.fingerprint({**os.environ, **worker_environment(kernels)})


def check_one_machine(records: Dict[str, dict], out_dir: str, kernels: str,
                      mixed_machines: bool = False) -> None:
  """Refuses to add this machine's runs beside records of other numerics.

  A seed here would not repeat them, and a report would pool them: raises
  UserError naming them and what to do, unless `mixed_machines`.
  """
  here = worker_fingerprint(kernels)
  others = [r.get("machine") for r in records.values()
            if machine.numerics(r.get("machine")) != machine.numerics(here)]
  if not others or mixed_machines:
    return
  theirs = machine.numerics(others[0])
  hint = ("pass --kernels=portable, which computes theirs"
          if theirs and theirs == machine.numerics(worker_fingerprint("portable"))
          else "move the file aside to start afresh here")
  raise errors.UserError(
      f"{os.path.join(out_dir, RUNS_FILE)} holds {len(others)} runs recorded "
      f"with other numerics ({machine.describe(others[0])}) than this "
      f"machine's ({machine.describe(here)}), which a seed here would not "
      f"repeat: {hint}, or pass --mixed_machines to add this machine's runs "
      "beside them (the report names each run's machine)")


def run_sweep(runs: Iterable[Run], out_dir: str, data_dir: Optional[str] = None,
              workers: Optional[int] = None,
              print_fn=functools.partial(print, flush=True),
              kernels: str = "native",
              mixed_machines: bool = False) -> Dict[str, dict]:
  """Trains every run not yet recorded in out_dir/runs.jsonl; {key: record}.

  Each finished run is appended at once, so an interrupted sweep loses at
  most the runs in flight. Prints a progress line per finished run: which
  of how many, its result, and the estimated time left. Runs go to
  workers with `kernels` (console.kernel_environment); none is started
  beside records of other numerics unless `mixed_machines`.
  """
  os.makedirs(out_dir, exist_ok=True)
  records = read_records(out_dir)
  runs = list(dict.fromkeys(runs))  # the same run asked for twice runs once
  todo = [run for run in runs if run.key not in records]
  workers = min(workers or cpu_count(), max(len(todo), 1))
  print_fn(f"{len(runs)} runs: {len(runs) - len(todo)} already recorded in "
           f"{os.path.join(out_dir, RUNS_FILE)}, {len(todo)} to go, "
           f"{workers} at a time")
  if not todo:
    return records
  check_one_machine(records, out_dir, kernels, mixed_machines)
  # Modern runs and hw05 runs take longest: started first, they leave no
  # long run alone at the end.
  todo.sort(key=lambda r: (r.port != "modern", r.hparams.optimizer != "adam"))
  start = time.monotonic()
  with worker_pool(workers, kernels) as pool:
    futures = {pool.submit(train_once, run, data_dir): run for run in todo}
    for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
      run = futures[future]
      record = future.result()
      _append_record(out_dir, record)
      records[record["key"]] = record
      elapsed = time.monotonic() - start
      left = elapsed / done * (len(todo) - done)
      result = (f"{record['accuracy']:.4f}" if record["accuracy"] is not None
                else "diverged")
      print_fn(f"[{done}/{len(todo)}] {describe_run(run)}: {result} "
               f"({record['seconds']:.0f} s); about {_duration(left)} left")
  return records


def define_worker_flags() -> None:
  """--workers, --kernels and --mixed_machines: what the sweep commands share."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_integer("workers", None, "Runs at a time (default: one per core).",
                       lower_bound=1)
  flags.DEFINE_enum("kernels", "native", console.KERNELS,
                    "TensorFlow's CPU kernels in every run, as the training "
                    "commands' --kernels.")
  flags.DEFINE_boolean("mixed_machines", False,
                       "Add runs even where runs.jsonl holds runs of other "
                       "numerics (another kind of machine or --kernels); the "
                       "report then names each run's machine.")


def worker_options() -> dict:
  """run_sweep's keyword arguments from define_worker_flags' flags."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  return dict(workers=f.workers, kernels=f.kernels, mixed_machines=f.mixed_machines)


def prepare_out_dir(out_dir: str) -> None:
  """Creates --out if need be; raises UserError if it cannot be written."""
  try:
    os.makedirs(out_dir, exist_ok=True)
  except OSError as e:
    raise errors.UserError(f"cannot create --out {out_dir}: {e.strerror}") from None
  if not os.access(out_dir, os.W_OK):
    raise errors.UserError(f"--out {out_dir} is not writable: choose another directory")


@contextlib.contextmanager
def one_line_errors(out_dir: str):
  """A sweep command's failures as one line and an exit status: bad input 2,
  Ctrl-C 130 (the finished runs stay recorded in out_dir)."""
  try:
    yield
  except errors.UserError as e:
    errors.fail(str(e), e.exit_status)
  except KeyboardInterrupt:
    errors.fail(f"interrupted; the finished runs are kept in {out_dir}: run "
             "the same command again to go on", 130)


def verify_data(data_dir: Optional[str]) -> None:
  """MNIST checked (or downloaded) here, once, rather than in every worker:
  a missing file is one line, not a traceback from a worker."""
  input_data.maybe_download(input_data.resolve_data_dir(data_dir))


# More runs than any sweep could finish; the list is checked before it is built.
MAX_SEEDS = 10000


def is_seeds_text(text: str) -> bool:
  try:
    _seed_ranges(text)
  except ValueError:
    return False
  return True


def _seed_ranges(text: str) -> List[range]:
  """"1-10,12" -> [range(1, 11), range(12, 13)]; raises ValueError unless
  every seed is one both ports take (0..hp.SEED_MAX) and there are at most
  MAX_SEEDS of them."""
  ranges = []
  for part in text.split(","):
    first, dash, last = part.partition("-")
    ranges.append(range(int(first), int(last if dash else first) + 1))
  if (not all(ranges) or min(r.start for r in ranges) < 0
      or max(r.stop for r in ranges) > hp.SEED_MAX + 1
      or sum(len(r) for r in ranges) > MAX_SEEDS):
    raise ValueError(text)
  return ranges


def seeds_from_text(text: str) -> List[int]:
  """"1-10" -> [1..10]; "3,5,8" -> [3, 5, 8]; raises ValueError."""
  return [seed for seeds in _seed_ranges(text) for seed in seeds]
