"""The --checkpoint_dir contract both ports keep: save every epoch, resume.

--checkpoint_dir DIR holds:

  hparams.json  the port, hyper-parameters and seed of the run, and the
                machine it started on (common/machine.py), written when
                it starts with no checkpoint there yet; once there is one, a
                run with other flags is refused by name, before anything is
                written.
  checkpoint    TensorFlow's pointer to the latest complete checkpoint.
  PREFIX-N.*    the checkpoint after epoch N (the last KEEP are kept): the
                weights, the optimizer's slots and step counter, and the
                string variable `training_state` (a TrainingState as JSON:
                epochs completed, their costs, and whatever else the port
                needs to go on exactly, e.g. the batch order), plus any
                random-number state the port keeps in variables.

A save is atomic where it counts: the pointer. TensorFlow writes checkpoint
N's data file under a temporary name and renames it into place, then its
index; only once both are complete is the pointer moved to N, and TensorFlow
writes the pointer to a temporary file and renames it into place. The
pointer never names a checkpoint being written (a resumed run writes only
checkpoints after the one it names), and old checkpoints are deleted only
once the pointer has moved past them. So a process killed at any moment
leaves the pointer on a complete checkpoint; SIGINT and SIGTERM wait until a
save that has begun is complete (`uninterrupted`).

The guarantee is against a dying process, not a failing disk: nothing is
fsync'ed, as TensorFlow's own checkpoint writers do not. A disk that fills
up during a save is one line (`undone_if_disk_full`): the save's files go,
the pointer stays on the last complete checkpoint.
"""

import contextlib
import dataclasses
import glob
import json
import os
import re
import secrets
import shutil
import signal
import sys
import threading
from typing import List, Optional

# TensorFlow is imported where it is used: the commands check their
# --checkpoint_dir in flag validators, before they import it quietly.
from common import files
from common import hparams as hp
from common import machine
from common.errors import UserError

RECORD_NAME = "hparams.json"
# The pointer file TensorFlow's savers keep (tf.compat.v1.train.Saver and
# tf.train.CheckpointManager alike), naming the latest checkpoint.
STATE_FILE = "checkpoint"
KEEP = 3  # checkpoints kept; older ones are deleted
# Testing only: "kill_in_save:N" SIGKILLs the process in the middle of epoch
# N's save, after its files are written and before the pointer names them;
# "enospc:checkpoint:N" fails the save there as a full disk would.
FAULT_ENV = files.FAULT_ENV
# A run may be extended with more epochs: the only flag that may change.
_MAY_DIFFER = ("training_epochs",)


@dataclasses.dataclass
class TrainingState:
  """What a checkpoint holds besides the model's and optimizer's variables."""
  epoch: int = 0  # epochs completed
  epoch_costs: List[float] = dataclasses.field(default_factory=list)
  # The port's own JSON-able state of the batch order, if it needs one to
  # resume (a port whose order is a function of seed and epoch needs none).
  data: Optional[dict] = None

  def to_json(self) -> str:
    return json.dumps({"epoch": self.epoch,
                       "epoch_costs": [float(c) for c in self.epoch_costs],
                       "data": self.data})

  @classmethod
  def from_json(cls, text) -> "TrainingState":
    """Raises ValueError if `text` is not a TrainingState."""
    try:
      fields = json.loads(text)
      state = cls(int(fields["epoch"]), [float(c) for c in fields["epoch_costs"]],
                  fields["data"])
    except (TypeError, KeyError, AttributeError) as e:
      raise ValueError(f"training_state is damaged ({e!r})") from None
    if len(state.epoch_costs) != state.epoch:
      raise ValueError("training_state is damaged (epochs and costs disagree)")
    return state


# ---------------------------------------------------------------- the record


def _describe(hparams: hp.HParams) -> dict:
  """The flags that must match for a run to resume, as JSON values."""
  fields = dataclasses.asdict(hparams)
  fields["hidden_units"] = list(fields["hidden_units"])
  for name in _MAY_DIFFER:
    del fields[name]
  return fields


def _show(value) -> str:
  if value is None:
    return "none"
  if isinstance(value, list):
    return ",".join(map(str, value))
  return str(value)


def prepare_directory(checkpoint_dir: str, port: str, hparams: hp.HParams) -> int:
  """Makes `checkpoint_dir` ready for `port`'s run of `hparams`; returns its seed.

  A directory without a checkpoint gets (or gets again: nothing was saved
  to resume) hparams.json. One with a checkpoint must hold a run of the
  same port and flags (but --training_epochs: a run may be extended). The
  seed is --seed, or drawn once for the directory, so that a run without
  --seed resumes exactly too. Raises UserError, having written nothing, if
  the directory cannot be written or holds something else.
  """
  files.writable_directory(checkpoint_dir, "--checkpoint_dir")
  where = f"--checkpoint_dir {checkpoint_dir}"
  record_path = os.path.join(checkpoint_dir, RECORD_NAME)
  has_checkpoint = os.path.exists(os.path.join(checkpoint_dir, STATE_FILE))
  if has_checkpoint and not os.path.exists(record_path):
    raise UserError(f"{where} holds a checkpoint but no {RECORD_NAME}, so "
                    "not one of this program's runs; use another directory")
  if not has_checkpoint:
    seed = hparams.seed if hparams.seed is not None else secrets.randbelow(2**31)
    write_record(checkpoint_dir, port, hparams, seed)
    return seed
  return _check_resumable(record_path, where, port, hparams)


def write_record(checkpoint_dir: str, port: str, hparams: hp.HParams,
                 seed: int, started_on: Optional[dict] = None) -> None:
  """Writes hparams.json: `port`'s run of `hparams` (its flags) with `seed`.

  `started_on` is the machine.fingerprint of where the run started (a run
  carried over from elsewhere keeps its own), else this process's.
  """
  files.write_text(os.path.join(checkpoint_dir, RECORD_NAME), json.dumps(
      {"port": port, "hparams": _describe(hparams), "seed": seed,
       # Where the run's numbers come from (common/machine.py).
       "machine": started_on or machine.fingerprint()}, indent=2))


@dataclasses.dataclass(frozen=True)
class Record:
  """A run's hparams.json: its port, its flags and the seed it runs with."""
  port: str
  hparams: hp.HParams  # as the flags gave them (seed None if drawn);
  # training_epochs is not recorded (a run may be extended): the default
  seed: int
  machine: Optional[dict] = None  # where it started (common/machine.py)

  @property
  def run_hparams(self) -> hp.HParams:
    """The hyper-parameters the run trains with: its seed filled in."""
    return dataclasses.replace(self.hparams, seed=self.seed)


def read_record(checkpoint_dir: str) -> Optional[Record]:
  """The run record in `checkpoint_dir`, None if it has none.

  Raises UserError if it cannot be read or is damaged.
  """
  path = os.path.join(checkpoint_dir, RECORD_NAME)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      record = json.load(f)
    fields = dict(record["hparams"])
    fields["hidden_units"] = tuple(fields["hidden_units"])
    return Record(str(record["port"]), hp.HParams(**fields), int(record["seed"]),
                  record.get("machine"))
  except OSError as e:
    raise UserError(f"cannot read {path} ({e.strerror})") from None
  except (ValueError, TypeError, KeyError) as e:
    raise UserError(f"{path}, the record of the run, is damaged "
                    f"({e.__class__.__name__})") from None


def check_holds_no_run(directory: str, flag: str) -> None:
  """Raises UserError unless `directory` is missing or empty: a new run goes there."""
  if not os.path.exists(directory):
    return
  if not os.path.isdir(directory):
    raise UserError(f"{flag} {directory} is a file, not a directory")
  entries = os.listdir(directory)
  if RECORD_NAME in entries or STATE_FILE in entries:
    raise UserError(f"{flag} {directory} already holds a run; give a new "
                    "or empty directory")
  if entries:
    raise UserError(f"{flag} {directory} is not empty; give a new or empty "
                    "directory")


def _check_resumable(record_path: str, where: str, port: str,
                     hparams: hp.HParams) -> int:
  """The recorded seed, if the record is of `port`'s run of `hparams`.

  A run started on another kind of machine resumes, with one line on
  stderr saying it will not end as one that never moved would.
  """
  try:
    with open(record_path, encoding="utf-8") as f:
      record = json.load(f)
    recorded, seed = record["hparams"], int(record["seed"])
    recorded_port = record["port"]
    # Valid JSON of another shape ({"hparams": "x"}) is damaged too.
    if not (isinstance(recorded, dict) and isinstance(recorded_port, str)
            and isinstance(record.get("machine") or {}, dict)
            and 0 <= seed <= hp.SEED_MAX):
      raise TypeError("not a record")
  except OSError as e:
    raise UserError(f"{where}: cannot read {RECORD_NAME} ({e.strerror}); "
                    "use another directory") from None
  except (ValueError, TypeError, KeyError) as e:
    raise UserError(f"{where}: {RECORD_NAME} is damaged ({e.__class__.__name__}); "
                    "use another directory") from None
  if recorded_port != port:
    raise UserError(f"{where} holds a run of the {recorded_port} port, not "
                    f"{port}; use another directory")
  current = _describe(hparams)
  differences = [f"{name} {_show(recorded.get(name))}, not {_show(value)}"
                 for name, value in current.items() if recorded.get(name) != value]
  if differences:
    raise UserError(f"{where} holds a run with {', and '.join(differences)}; "
                    "use another directory or the same flags")
  _note_if_moved(record.get("machine"), where)
  return seed


def _note_if_moved(recorded: Optional[dict], where: str) -> None:
  """One line on stderr if the run was started with other numerics."""
  here = machine.fingerprint()
  try:
    moved = recorded and machine.numerics(recorded) != machine.numerics(here)
  except (KeyError, TypeError, AttributeError):  # a damaged note: no note
    moved = False
  if moved:
    print(f"note: {where} was started on {machine.describe(recorded)}; it "
          f"goes on here, on {machine.describe(here)}, but will not end "
          "bit-identical to a run that never moved", file=sys.stderr)


# ---------------------------------------------------------------- checkpoints


def latest_checkpoint(checkpoint_dir: str) -> Optional[str]:
  """The prefix TensorFlow's pointer names, None before the first save."""
  if not os.path.exists(os.path.join(checkpoint_dir, STATE_FILE)):
    return None
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    state = tf.train.get_checkpoint_state(checkpoint_dir)
  except (ValueError, tf.errors.OpError):
    state = None
  if state is None:  # TF returns None (and logs) for a file it cannot parse
    raise UserError(f"--checkpoint_dir {checkpoint_dir}: its file 'checkpoint' "
                    "cannot be read or is damaged; use another directory")
  return state.model_checkpoint_path


def kept_checkpoints(checkpoint_dir: str) -> List[str]:
  """The prefixes of the checkpoints the pointer file lists, oldest first."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  state = tf.train.get_checkpoint_state(checkpoint_dir)
  return list(state.all_model_checkpoint_paths) if state else []


# The lines of a TF error message that only say where it happened.
_TF_CONTEXT = re.compile(r"^(Graph execution error:|Detected at node|Node:|\s+File |"
                         r"\s*\[\[\{\{node )")


def restore_failed(path: str, error: Exception) -> UserError:
  """The one-line error for a checkpoint that does not restore."""
  message = getattr(error, "message", None) or str(error)
  lines = [line for line in message.splitlines()
           if line.strip() and not _TF_CONTEXT.match(line)]
  reason = (re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", lines[0]) if lines
            else error.__class__.__name__)
  if len(reason) > 200:
    reason = reason[:200] + "..."
  return UserError(f"the checkpoint {path} cannot be restored ({reason}); "
                   "use another --checkpoint_dir")


def check_epochs(checkpoint_dir: str, state: TrainingState,
                 training_epochs: int) -> None:
  if state.epoch > training_epochs:
    raise UserError(f"--checkpoint_dir {checkpoint_dir} holds {state.epoch} "
                    f"completed epochs, more than --training_epochs "
                    f"{training_epochs}; use another directory or "
                    f"--training_epochs {state.epoch} or more")


@contextlib.contextmanager
def uninterrupted():
  """Holds SIGINT and SIGTERM back until the block is done, then delivers them.

  A save that has begun completes; then Ctrl-C raises KeyboardInterrupt and
  SIGTERM does what its handler does (common/cli.py: raise Terminated).
  Handlers can only be changed in the main thread; elsewhere, no effect.
  """
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  received = []
  held = (signal.SIGINT, signal.SIGTERM)
  previous = {s: signal.signal(s, lambda signum, _: received.append(signum))
              for s in held}
  try:
    yield
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
    for signum in dict.fromkeys(received):
      signal.raise_signal(signum)


def fault_point(epoch: int) -> None:
  """Testing hook, called between writing epoch `epoch`'s files and the pointer.

  With $MNIST_PORT_FAULT=kill_in_save:N the process SIGKILLs itself there
  while saving epoch N: tests/test_checkpoint.py shows such a checkpoint is
  never used. Unset, it does nothing.
  """
  if os.environ.get(FAULT_ENV) == f"kill_in_save:{epoch}":
    os.kill(os.getpid(), signal.SIGKILL)
  files.fault_point(f"checkpoint:{epoch}")


@contextlib.contextmanager
def undone_if_disk_full(checkpoint_dir: str, prefix: str):
  """A full disk while saving checkpoint `prefix` becomes one UserError.

  What the save wrote (PREFIX.* and the PREFIX_temp directory TensorFlow's
  CheckpointManager writes in) is removed; the pointer, moved only once a
  save is complete, still names the last complete checkpoint.
  """
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    if not files.is_disk_full(e):
      raise
    remove_partial_checkpoint(prefix)
    raise files.disk_full(
        checkpoint_dir, "--checkpoint_dir",
        "the last complete checkpoint is kept: free some space and run the "
        "same command again to resume from it") from None


def remove_partial_checkpoint(prefix: str) -> None:
  """Removes every file of checkpoint `prefix`, and any temporary directory."""
  for pattern in (".*", "_temp*"):
    for path in glob.glob(glob.escape(prefix) + pattern):
      if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
      else:
        with contextlib.suppress(OSError):
          os.unlink(path)
