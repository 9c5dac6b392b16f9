"""How a modern task learns its place in a cluster: $TF_CONFIG, as tf.distribute reads it.

  TF_CONFIG='{"cluster": {"worker": ["H:P", "H:P"]},
              "task": {"type": "worker", "index": 0}}' python -m modern.hw05

MultiWorkerMirroredStrategy reads the same variable (worker 0 is the
chief); there are no parameter servers. `python -m modern.cluster
--script=hw05` starts such a cluster on this machine (common/launcher.py);
what each task does is modern/distributed.py's. Name for name with
legacy/cluster.py.
"""

import json

from absl import flags

from common import cluster
from common import launcher


def define_flags(flag_values: flags.FlagValues) -> None:
  """--cluster_timeout: the rest of a task's place is in $TF_CONFIG."""
  cluster.define_timeout_flag(flag_values)


def role():
  """This process's cluster.Role from $TF_CONFIG; None when it is unset."""
  return cluster.role_from_tf_config(flags.FLAGS.cluster_timeout)


def task_settings(ps_hosts, worker_hosts, job: str, index: int) -> cluster.TaskSettings:
  """The $TF_CONFIG that makes a process the task `job` `index` of the cluster."""
  del ps_hosts  # none: every worker holds a copy of the variables
  return cluster.TaskSettings(env={cluster.TF_CONFIG_ENV: json.dumps(
      {"cluster": {"worker": list(worker_hosts)},
       "task": {"type": job, "index": index}})})


INTERFACE = cluster.Interface(define_flags=define_flags, role=role,
                              task_settings=task_settings, has_ps=False)

if __name__ == "__main__":
  from modern import port  # pylint: disable=g-import-not-at-top
  launcher.run_cluster_command(port.PORT)
