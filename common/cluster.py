"""A task's place in a training cluster, and the checks a task makes first.

Both ports run data-parallel training on a cluster of processes: each
process is one task, `ps` (a parameter server) or `worker`, named by its
host:port in a host list. How a task learns its place differs by port (TF1's
--ps_hosts/--worker_hosts/--job_name/--task_index flags, TF2's $TF_CONFIG);
what it learns is a Role, written here once:

  Role              - the cluster's host lists, this task's job and index.
  parse_hosts()     - "host:port,host:port" -> a tuple, or ValueError.
  role_from_tf_config() - $TF_CONFIG's JSON as a Role (None if unset).
  check_address_free() - this task's port is free (before the server starts).
  wait_reachable()  - the other tasks answer within the timeout.
  rendezvous()      - holds this task's port until the other workers answer.
  lost_task_error() - a failed step's TF error as one line naming the lost task.
  Interface         - what a port tells the launcher (common/launcher.py)
                      and the training driver (common/cli.py).

TensorFlow's gRPC server listens on every interface of its port (it binds
0.0.0.0, whatever host the list names): anyone who can reach the port can
run operations in the task. Run clusters on trusted networks only.
"""

import dataclasses
import json
import os
import re
import socket
import time
from typing import Callable, Dict, List, Optional, Tuple

from common.errors import TaskLostError, UserError, first_line

JOBS = ("ps", "worker")
TF_CONFIG_ENV = "TF_CONFIG"
# How long a task waits for the others to answer, and a parameter server
# for a worker, before it gives up (--cluster_timeout).
DEFAULT_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class Role:
  """One task's view of the cluster.

  ps_hosts, worker_hosts: "host:port" of every task, by job and index.
  job, index: this task ("worker", 0 is the chief: it initialises, saves
    checkpoints, writes summaries, exports and prints the lines).
  sync: every step averages all workers' gradients before one update
    (else each worker updates the parameters on its own: asynchronous).
  timeout: seconds to wait for the other tasks (wait_reachable).
  """
  ps_hosts: Tuple[str, ...]
  worker_hosts: Tuple[str, ...]
  job: str
  index: int
  sync: bool = True
  timeout: float = DEFAULT_TIMEOUT

  @property
  def is_chief(self) -> bool:
    return self.job == "worker" and self.index == 0

  @property
  def address(self) -> str:
    return self.hosts(self.job)[self.index]

  @property
  def name(self) -> str:
    """"worker 0", "ps 1": how the task is named in messages and logs."""
    return f"{self.job} {self.index}"

  def hosts(self, job: str) -> Tuple[str, ...]:
    return self.ps_hosts if job == "ps" else self.worker_hosts

  def cluster_dict(self) -> Dict[str, List[str]]:
    """{"ps": [...], "worker": [...]}, jobs without tasks left out."""
    return {job: list(self.hosts(job)) for job in JOBS if self.hosts(job)}


def parse_hosts(text: str) -> Tuple[str, ...]:
  """"127.0.0.1:2222,127.0.0.1:2223" -> the addresses; ValueError if not so."""
  hosts = tuple(h.strip() for h in text.split(",")) if text else ()
  for host in hosts:
    name, _, port = host.rpartition(":")
    if not name or not port.isdigit() or not 0 < int(port) < 65536:
      raise ValueError(f"{host!r} is not host:port")
  if len(set(hosts)) != len(hosts):
    raise ValueError("an address is named twice")
  return hosts


def _split(address: str) -> Tuple[str, int]:
  host, _, port = address.rpartition(":")
  return host, int(port)


def role_from_tf_config(timeout: float = DEFAULT_TIMEOUT) -> Optional[Role]:
  """$TF_CONFIG as a Role; None when it is unset (a single-process run).

  TF_CONFIG = {"cluster": {"worker": ["host:port", ...]},
               "task": {"type": "worker", "index": 0}}
  Raises UserError, naming what is wrong, for anything else.
  """
  text = os.environ.get(TF_CONFIG_ENV)
  if not text:
    return None
  hint = ('; it must look like {"cluster": {"worker": ["host:port", ...]}, '
          '"task": {"type": "worker", "index": 0}}')
  try:
    config = json.loads(text)
    workers = parse_hosts(",".join(config["cluster"]["worker"]))
    job, index = config["task"]["type"], config["task"]["index"]
  except (ValueError, TypeError, KeyError, AttributeError) as e:
    raise UserError(f"${TF_CONFIG_ENV} is not a cluster description "
                    f"({type(e).__name__}: {e})" + hint) from None
  if set(config["cluster"]) - {"worker"}:
    raise UserError(f"${TF_CONFIG_ENV} names jobs {sorted(config['cluster'])}: "
                    "this program's clusters have workers only" + hint)
  if job != "worker" or not isinstance(index, int) or not 0 <= index < len(workers):
    raise UserError(f"${TF_CONFIG_ENV}'s task {job} {index} is not one of its "
                    f"{len(workers)} workers (index 0..{len(workers) - 1})")
  return Role((), workers, job, index, sync=True, timeout=timeout)


def _bind_all_interfaces(role: Role) -> socket.socket:
  """This task's port, bound as TensorFlow's server binds it: every interface.

  Raises UserError if it is taken (TF's server would abort the process).
  """
  _, port = _split(role.address)
  s = socket.socket()
  try:
    s.bind(("", port))
  except OSError as e:
    s.close()
    raise UserError(f"{role.name}'s port {port} ({role.address}) is in use "
                    f"({e.strerror}); choose a free port in the host list") from None
  return s


def check_address_free(role: Role) -> None:
  """Raises UserError if this task's port is taken (before the server starts)."""
  _bind_all_interfaces(role).close()


def rendezvous(role: Role) -> None:
  """Listens on this task's port until every other worker answers on its own.

  For servers that wait for every worker inside TensorFlow, where no
  timeout can reach them (MultiWorkerMirroredStrategy's constructor holds
  the interpreter until all have joined): after this, all were started.
  Raises UserError if the port is taken, or a worker is missing after
  role.timeout seconds. The port is free again on return, for TF's server.
  """
  with _bind_all_interfaces(role) as s:
    s.listen()
    wait_reachable(role, jobs=("worker",))


def reachable(address: str, timeout: float = 1.0) -> bool:
  """Whether something accepts a TCP connection at `address`."""
  try:
    with socket.create_connection(_split(address), timeout=timeout):
      return True
  except OSError:
    return False


def wait_reachable(role: Role, jobs=JOBS) -> None:
  """Waits until every other task of `jobs` answers; UserError after role.timeout."""
  deadline = time.monotonic() + role.timeout
  waiting = [(job, i, address) for job in jobs
             for i, address in enumerate(role.hosts(job))
             if (job, i) != (role.job, role.index)]
  while waiting:
    waiting = [task for task in waiting if not reachable(task[2])]
    if waiting and time.monotonic() > deadline:
      job, i, address = waiting[0]
      raise UserError(f"{role.name} cannot reach {job} {i} at {address} within "
                      f"{role.timeout:g} s (--cluster_timeout): start it, or "
                      "check the host lists")
    if waiting:
      time.sleep(0.25)


# Where TensorFlow's errors name the task that is gone, most telling first:
# the peer a gRPC call failed to reach, the tasks the coordination service
# lost, any task a message mentions.
_LOST_TASK_PATTERNS = (
    r"remote target /job:(ps|worker)/replica:\d+/task:(\d+)",
    r"stopped sending heartbeats\):\s*/job:(ps|worker)/replica:\d+/task:(\d+)",
    r"/job:(ps|worker)(?:/replica:\d+)?/task:(\d+)")


def lost_task_error(role: Role, error: Exception) -> TaskLostError:
  """A step that failed because a task is gone, as one line naming it."""
  named = []
  for pattern in _LOST_TASK_PATTERNS:
    named = [f"{job} {index}" for job, index in sorted(set(re.findall(pattern, str(error))))
             if (job, int(index)) != (role.job, role.index)]
    if named:
      break
  what = (f"{' and '.join(named)} stopped answering" if named
          else f"a task of the cluster failed ({type(error).__name__}: "
               f"{first_line(error)})")
  return TaskLostError(f"{role.name}: {what}; the cluster cannot go on without it")


@dataclasses.dataclass(frozen=True)
class TaskSettings:
  """What one task of a local cluster is started with, besides its script."""
  args: Tuple[str, ...] = ()
  env: Dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Interface:
  """How a port's training command takes part in a cluster.

  define_flags(flag_values): its cluster flags (common/cli.py calls it).
  role(): this process's Role from those flags or the environment; None
    outside a cluster. May raise UserError.
  task_settings(ps_hosts, worker_hosts, job, index): the flags and
    environment that make a process that task (common/launcher.py).
  has_ps: whether the port's clusters have parameter servers.
  """
  define_flags: Callable
  role: Callable[[], Optional[Role]]
  task_settings: Callable[[Tuple[str, ...], Tuple[str, ...], str, int], TaskSettings]
  has_ps: bool


def define_timeout_flag(flag_values) -> None:
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_float("cluster_timeout", DEFAULT_TIMEOUT,
                     "In a cluster: seconds to wait for the other tasks to "
                     "answer before giving up; a parameter server also ends "
                     "once no worker has answered for this long.",
                     lower_bound=1, flag_values=flag_values)
