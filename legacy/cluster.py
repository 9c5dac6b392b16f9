"""How a legacy task learns its place in a cluster: TF1's distributed flags.

  python -m legacy.hw05 --ps_hosts=H:P --worker_hosts=H:P,H:P \\
      --job_name=worker --task_index=0 [--sync_replicas]

as TF1's distributed how-to wrote them (tf.train.ClusterSpec from the two
lists; worker 0 is the chief). `python -m legacy.cluster --script=hw05`
starts such a cluster on this machine (common/launcher.py); what each task
does is legacy/distributed.py's. Name for name with modern/cluster.py.
"""

from absl import flags

from common import cluster
from common import launcher


def _hosts_parse(text) -> bool:
  try:
    cluster.parse_hosts(text or "")
  except ValueError:
    return False
  return True


def define_flags(flag_values: flags.FlagValues) -> None:
  """--ps_hosts, --worker_hosts, --job_name, --task_index, --sync_replicas."""
  fv = dict(flag_values=flag_values)
  flags.DEFINE_string("ps_hosts", None,
                      "In a cluster: the parameter servers, host:port,... "
                      "(TF1's ClusterSpec job `ps`).", **fv)
  flags.DEFINE_string("worker_hosts", None,
                      "In a cluster: the workers, host:port,...; the first "
                      "is the chief.", **fv)
  flags.DEFINE_enum("job_name", None, cluster.JOBS,
                    "In a cluster: this task's job.", **fv)
  flags.DEFINE_integer("task_index", 0, "In a cluster: this task's index in "
                       "its job's host list.", **fv)
  flags.DEFINE_boolean("sync_replicas", False,
                       "In a cluster: every step averages all workers' "
                       "gradients (one client, a tower per worker) instead "
                       "of each worker updating the parameters on its own.",
                       **fv)
  cluster.define_timeout_flag(flag_values)
  for name in ("ps_hosts", "worker_hosts"):
    flags.register_validator(
        name, _hosts_parse, **fv,
        message=f"--{name} must be host:port addresses separated by commas, "
                "e.g. 127.0.0.1:2222,127.0.0.1:2223")
  flags.register_multi_flags_validator(
      ["job_name", "ps_hosts", "worker_hosts"],
      lambda f: (f["job_name"] is None) == (f["worker_hosts"] is None)
      and (f["ps_hosts"] is None or f["job_name"] is not None),
      message="a cluster task needs --job_name and --worker_hosts (and "
              "--ps_hosts) together", **fv)
  flags.register_multi_flags_validator(
      ["job_name", "task_index", "ps_hosts", "worker_hosts"], _index_in_range,
      message="--task_index must be an index into its job's host list "
              "(0 .. the number of hosts - 1)", **fv)
  flags.register_multi_flags_validator(
      ["job_name", "ps_hosts"],
      lambda f: f["job_name"] is None or bool(f["ps_hosts"]),
      message="a legacy cluster needs at least one parameter server "
              "(--ps_hosts)", **fv)


def _index_in_range(f) -> bool:
  if f["job_name"] is None or not _hosts_parse(f["ps_hosts"]) or not _hosts_parse(
      f["worker_hosts"]):
    return True  # the other validators say what is wrong
  hosts = f["ps_hosts"] if f["job_name"] == "ps" else f["worker_hosts"]
  return 0 <= f["task_index"] < len(cluster.parse_hosts(hosts or ""))


def role():
  """This process's cluster.Role from the flags; None without --job_name."""
  f = flags.FLAGS
  if f.job_name is None:
    return None
  return cluster.Role(cluster.parse_hosts(f.ps_hosts or ""),
                      cluster.parse_hosts(f.worker_hosts), f.job_name,
                      f.task_index, sync=f.sync_replicas,
                      timeout=f.cluster_timeout)


def task_settings(ps_hosts, worker_hosts, job: str, index: int) -> cluster.TaskSettings:
  """The flags that make a process the task `job` `index` of the cluster."""
  return cluster.TaskSettings(args=(
      f"--ps_hosts={','.join(ps_hosts)}", f"--worker_hosts={','.join(worker_hosts)}",
      f"--job_name={job}", f"--task_index={index}"))


INTERFACE = cluster.Interface(define_flags=define_flags, role=role,
                              task_settings=task_settings, has_ps=True)

if __name__ == "__main__":
  from legacy import port  # pylint: disable=g-import-not-at-top
  launcher.run_cluster_command(port.PORT)
