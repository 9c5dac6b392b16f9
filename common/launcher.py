"""Runs a training cluster on this machine: every task a process on 127.0.0.1.

  python -m PORT.cluster --script=hw05 [--workers=2] [--ps=1] [-- TRAINING FLAGS]

starts the port's training command (`python -m PORT.hw05 TRAINING FLAGS`)
once per task, each on a free port of 127.0.0.1, told its place in the
cluster as the port tells it (common/cluster.py Interface.task_settings).
Each task's output goes to its own file in the log directory (--log_dir,
else a new one under the system's temporary directory, named on the first
line); the chief's lines (`Epoch:`, `Accuracy:`) are printed as it prints
them.

A cluster whose tasks all end well exits 0. When one task fails, or on
Ctrl-C or SIGTERM, the others are stopped (SIGTERM, then SIGKILL after
--stop_seconds), and one line names the failed task and the last line of
its log; the exit status is the task's (2 for bad input), 130 for Ctrl-C.
No task outlives the launcher: each is asked to get SIGTERM if the
launcher itself dies.
"""

import ctypes
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

from absl import app
from absl import flags

from common import cluster
from common import errors
from common import flags as common_flags
from common import ports

FLAGS = flags.FLAGS
TASKS_FILE = "tasks.json"  # names, pids, commands of a run's tasks
_POLL_SECONDS = 0.1


def define_flags() -> None:
  flags.DEFINE_enum("script", None, ("hw04", "hw05"), "The training script.")
  flags.mark_flag_as_required("script")
  flags.DEFINE_integer("workers", 2, "Worker tasks (worker 0 is the chief).",
                       lower_bound=1)
  flags.DEFINE_integer("ps", 1, "Parameter server tasks (ports that use them).",
                       lower_bound=0)
  flags.DEFINE_string("task_logs", None,
                      "Write each task's output to TASK_LOGS/<job><index>.log "
                      "(default: a new directory under the temporary one).")
  flags.DEFINE_float("stop_seconds", 5.0,
                     "Seconds a task is given to end after SIGTERM before "
                     "it is killed.", lower_bound=0)
  flags.DEFINE_float("finish_seconds", 60.0,
                     "Seconds the parameter servers are given to end once "
                     "every worker has ended well.", lower_bound=0)


@dataclasses.dataclass
class Task:
  name: str  # "worker 0"
  command: List[str]
  env: Dict[str, str]
  log_path: str
  process: Optional[subprocess.Popen] = None

  def status(self) -> Optional[int]:
    return self.process.poll()


def free_addresses(count: int) -> List[str]:
  """`count` different 127.0.0.1:PORT addresses nothing listens on now."""
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket()
      s.bind(("127.0.0.1", 0))
      sockets.append(s)
    return [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
  finally:
    for s in sockets:
      s.close()


def _die_with_parent() -> None:
  """In the child: SIGTERM when the launcher dies, however it dies (Linux)."""
  try:
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)
  except (OSError, AttributeError):
    pass


def plan_tasks(port: ports.Port, script: str, workers: int, ps: int,
               log_dir: str, args: List[str]) -> List[Task]:
  """The cluster's tasks, parameter servers first, each told its place."""
  addresses = free_addresses(ps + workers)
  ps_hosts, worker_hosts = tuple(addresses[:ps]), tuple(addresses[ps:])
  tasks = []
  for job, count in (("ps", ps), ("worker", workers)):
    for index in range(count):
      settings = port.cluster.task_settings(ps_hosts, worker_hosts, job, index)
      tasks.append(Task(
          f"{job} {index}",
          [sys.executable, "-m", f"{port.name}.{script}", *settings.args, *args],
          dict(os.environ, **settings.env),
          os.path.join(log_dir, f"{job}{index}.log")))
  return tasks


def start(tasks: List[Task], log_dir: str) -> None:
  for task in tasks:
    with open(task.log_path, "wb") as log:
      # A session of its own: Ctrl-C reaches the launcher alone, which
      # stops the tasks in order.
      task.process = subprocess.Popen(
          task.command, env=task.env, stdin=subprocess.DEVNULL, stdout=log,
          stderr=subprocess.STDOUT, start_new_session=True,
          preexec_fn=_die_with_parent)
  with open(os.path.join(log_dir, TASKS_FILE), "w", encoding="utf-8") as f:
    json.dump([{"name": t.name, "pid": t.process.pid, "command": t.command,
                "log": t.log_path} for t in tasks], f, indent=2)


def stop(tasks: List[Task], grace_seconds: float) -> None:
  """SIGTERM to every running task's process group, SIGKILL after the grace."""
  def signal_all(signum):
    for task in tasks:
      if task.status() is None:
        try:
          os.killpg(task.process.pid, signum)
        except ProcessLookupError:
          pass
  signal_all(signal.SIGTERM)
  deadline = time.monotonic() + grace_seconds
  while any(t.status() is None for t in tasks) and time.monotonic() < deadline:
    time.sleep(_POLL_SECONDS)
  signal_all(signal.SIGKILL)
  for task in tasks:
    task.process.wait()


class LogTail:
  """The complete lines added to a file since the last call."""

  def __init__(self, path: str):
    self.path = path
    self.offset = 0
    self.partial = b""

  def new_lines(self) -> List[str]:
    with open(self.path, "rb") as f:
      f.seek(self.offset)
      data = f.read()
    self.offset += len(data)
    *lines, self.partial = (self.partial + data).split(b"\n")
    return [line.decode("utf-8", "replace") for line in lines]


def last_line(path: str) -> str:
  with open(path, "rb") as f:
    lines = [line for line in f.read().decode("utf-8", "replace").splitlines()
             if line.strip()]
  return lines[-1] if lines else "(its log is empty)"


def describe_exit(status: int) -> str:
  if status < 0:
    return f"was killed by {signal.Signals(-status).name}"
  return f"exited with status {status}"


def supervise(tasks: List[Task], finish_seconds: float) -> Optional[Task]:
  """Echoes the chief's lines until every task ended; returns a failed task.

  A task that does not end after the workers did (a parameter server
  whose workers could not tell it) counts as failed after finish_seconds.
  """
  chief = next(t for t in tasks if t.name == "worker 0")
  tail = LogTail(chief.log_path)
  workers_done_at = None
  while True:
    time.sleep(_POLL_SECONDS)
    for line in tail.new_lines():
      if not line.startswith("error: "):  # a failure is reported below
        print(line, flush=True)
    failed = [t for t in tasks if t.status() not in (None, 0)]
    if failed:
      return failed[0]
    if all(t.status() == 0 for t in tasks):
      return None
    if all(t.status() == 0 for t in tasks if t.name.startswith("worker")):
      workers_done_at = workers_done_at or time.monotonic()
      if time.monotonic() - workers_done_at > finish_seconds:
        return next(t for t in tasks if t.status() is None)


def _raise_interrupt(signum, frame):
  raise KeyboardInterrupt


def _main(port: ports.Port, argv) -> None:
  if FLAGS.ps and not port.cluster.has_ps:
    errors.fail(f"the {port.name} port's clusters have no parameter servers: "
                "leave --ps out (or PS=0)", 2)
  log_dir = FLAGS.task_logs or tempfile.mkdtemp(prefix=f"{port.name}-{FLAGS.script}-cluster-")
  os.makedirs(log_dir, exist_ok=True)
  ps = FLAGS.ps if port.cluster.has_ps else 0
  tasks = plan_tasks(port, FLAGS.script, FLAGS.workers, ps, log_dir, argv[1:])
  print(f"Cluster: {ps} ps and {FLAGS.workers} workers on 127.0.0.1; "
        f"task logs in {log_dir}", flush=True)
  signal.signal(signal.SIGTERM, _raise_interrupt)
  try:
    start(tasks, log_dir)
    failed = supervise(tasks, FLAGS.finish_seconds)
  except KeyboardInterrupt:
    stop(tasks, FLAGS.stop_seconds)
    errors.fail(f"interrupted; every task is stopped (logs in {log_dir}); the "
                "same command resumes from the last epoch saved in "
                "--checkpoint_dir, if given", 130)
  if failed is None:
    return
  status = failed.status()
  stop(tasks, FLAGS.stop_seconds)
  if status is None:
    message = (f"{failed.name} did not end within {FLAGS.finish_seconds:g} s "
               "of the workers")
    status = 1
  else:
    message = f"{failed.name} {describe_exit(status)}"
  errors.fail(f"{message}; every task is stopped; its last line "
              f"({failed.log_path}): {last_line(failed.log_path)}",
              status if 0 < status < 126 else 1)


def run_cluster_command(port: ports.Port) -> None:
  """`python -m PORT.cluster`: a local cluster of `port`'s training command."""
  define_flags()
  app.run(lambda argv: _main(port, argv), flags_parser=common_flags.parse_flags)
