"""Which machine a run's numbers came from (common/machine.py) and --kernels.

A seed repeats its numbers on one kind of machine only, so every record
carries a fingerprint: the sweeps' runs.jsonl (test_experiments.py reads one
back), a --checkpoint_dir's hparams.json and the bench's results.json. Here:
what decides the numerics key, the report showing two kinds apart, a sweep
refusing to mix kinds before it trains, and a resumed run's note when its
directory was started on another kind.
"""

import copy
import dataclasses
import json
import os

import pytest

from common import checkpoint_dir
from common import console
from common import errors
from common import hparams as hp
from common import machine
from experiments import report
from experiments import runner
from helpers import assert_one_error_line, run_module

HERE = machine.fingerprint({"TF_NUM_INTRAOP_THREADS": "1"})


def other_cpu(fingerprint):
  """The same fingerprint on another kind of CPU (no AVX-512)."""
  moved = copy.deepcopy(fingerprint)
  moved["cpu"] = "Some Other CPU (cpu family 23, model 49)"
  moved["isa"] = [f for f in moved["isa"] if not f.startswith(("avx512", "amx"))]
  return moved


def test_fingerprint_names_the_machine_and_its_settings():
  fingerprint = machine.fingerprint({"TF_NUM_INTRAOP_THREADS": "1", "PATH": "/x"})
  assert fingerprint["cpu"] and fingerprint["cores"] == len(os.sched_getaffinity(0))
  assert set(fingerprint["isa"]) <= set(machine.ISA_FLAGS)
  assert fingerprint["tensorflow"] == "2.21.0" and fingerprint["keras"] == "3.15.1"
  assert fingerprint["settings"] == {"TF_NUM_INTRAOP_THREADS": "1"}  # no PATH
  json.dumps(fingerprint)  # JSON values only
  assert "1 intra-op thread" in machine.describe(fingerprint)
  assert machine.describe(None) == "a machine not recorded"


def test_numerics_key_covers_what_changes_the_numbers():
  key = machine.numerics(HERE)
  assert machine.numerics(copy.deepcopy(HERE)) == key and len(key) == 12
  assert machine.numerics(None) is None
  assert machine.numerics(other_cpu(HERE)) != key  # native: the CPU decides
  more_cores = dict(HERE, cores=HERE["cores"] + 8)
  assert machine.numerics(more_cores) == key  # one thread: cores do not matter
  unset = dict(HERE, settings={})  # TensorFlow's choice: one thread per core
  assert machine.numerics(unset) == machine.numerics(
      dict(HERE, settings={"TF_NUM_INTRAOP_THREADS": str(HERE["cores"])}))
  newer = dict(HERE, tensorflow="2.22.0")
  assert machine.numerics(newer) != key


def test_portable_kernels_make_the_cpu_irrelevant():
  portable = machine.fingerprint({"TF_NUM_INTRAOP_THREADS": "1",
                                  **console.kernel_environment("portable")})
  assert machine.numerics(portable) != machine.numerics(HERE)
  assert machine.numerics(other_cpu(portable)) == machine.numerics(portable)


def test_kernel_environment():
  assert console.kernel_environment("native") == {}
  portable = console.kernel_environment("portable")
  assert portable["TF_ENABLE_ONEDNN_OPTS"] == "0"
  assert portable.get("ONEDNN_MAX_CPU_ISA") in (None, "AVX2")
  with pytest.raises(ValueError):
    console.kernel_environment("fast")


def hw04(seed, **changes):
  return dataclasses.replace(hp.SCRIPTS["hw04"], seed=seed, **changes)


def record(port, fingerprint, seed=1):
  run = runner.Run(port, hw04(seed))
  return {"key": run.key, "port": port, "hparams": {}, "machine": fingerprint}


def test_report_shows_each_kind_of_machine_apart():
  records = [record("legacy", HERE, 1), record("modern", HERE, 2),
             record("legacy", other_cpu(HERE), 3), record("legacy", None, 4)]
  lines = report.machine_lines(records)
  kinds = [line for line in lines if line.startswith("- ")]
  assert len(kinds) == 3, lines
  assert kinds[0].startswith("- 2 runs (1 legacy, 1 modern) on ")
  assert "Some Other CPU" in kinds[1] and "a machine not recorded" in kinds[2]
  assert any("3 kinds of numerics" in line and "pool" in line for line in lines)
  one_kind = report.machine_lines(records[:2])
  assert len(one_kind) == 1 and "kinds" not in one_kind[0]


def test_report_names_every_cpu_behind_one_kind_of_numerics():
  """Portable kernels give two CPUs one numerics: both are named, not pooled."""
  portable = machine.fingerprint({"TF_NUM_INTRAOP_THREADS": "1",
                                  **console.kernel_environment("portable")})
  lines = report.machine_lines([record("legacy", portable, 1),
                                record("modern", other_cpu(portable), 2)])
  assert len(lines) == 2, lines
  assert "Some Other CPU" not in lines[0] and "Some Other CPU" in lines[1]
  assert lines[0].endswith(f"(numerics `{machine.numerics(portable)}`)")
  assert lines[1].endswith(f"(numerics `{machine.numerics(portable)}`)")


def test_a_sweep_refuses_to_add_runs_beside_another_machines():
  native_here = runner.worker_fingerprint("native")
  portable_here = runner.worker_fingerprint("portable")
  foreign = {r["key"]: r for r in [record("legacy", other_cpu(native_here))]}
  with pytest.raises(errors.UserError, match="--mixed_machines") as e:
    runner.check_one_machine(foreign, "out", "native")
  assert "move the file aside" in str(e.value) and "\n" not in str(e.value)
  runner.check_one_machine(foreign, "out", "native", mixed_machines=True)
  same = {r["key"]: r for r in [record("legacy", native_here)]}
  runner.check_one_machine(same, "out", "native")
  # Records made with portable kernels: the hint says how to match them.
  portable = {r["key"]: r for r in [record("legacy", portable_here)]}
  with pytest.raises(errors.UserError, match="--kernels=portable"):
    runner.check_one_machine(portable, "out", "native")
  runner.check_one_machine(portable, "out", "portable")
  unrecorded = {r["key"]: r for r in [record("legacy", None)]}
  with pytest.raises(errors.UserError, match="a machine not recorded"):
    runner.check_one_machine(unrecorded, "out", "native")


def test_the_sweep_command_stops_before_training(tmp_path, data_dir):
  out = tmp_path / "out"
  out.mkdir()
  hparams = hw04(1, training_epochs=1, train_limit=300)
  foreign = {"key": runner.Run("legacy", hparams).key, "port": "legacy",
             "hparams": dataclasses.asdict(hparams), "epoch_costs": [1.0],
             "accuracy": 0.5, "collapsed": True, "error": None, "seconds": 1.0,
             "threads": 1, "machine": other_cpu(runner.worker_fingerprint())}
  text = json.dumps(foreign, sort_keys=True) + "\n"
  (out / runner.RUNS_FILE).write_text(text)
  proc = run_module("experiments.sweep", "--script=hw04", "--seeds=1-2",
                    "--ports=legacy", f"--out={out}", "--",
                    "--training_epochs=1", "--train_limit=300",
                    env={"MNIST_DATA_DIR": data_dir}, timeout=120)
  assert_one_error_line(proc, "other numerics", "--mixed_machines", status=2,
                        stdout=None)
  assert (out / runner.RUNS_FILE).read_text() == text  # nothing added


def test_checkpoint_dir_records_the_machine_and_notes_a_move(tmp_path, capsys):
  directory = str(tmp_path / "run")
  hparams = hw04(3)
  checkpoint_dir.prepare_directory(directory, "legacy", hparams)
  path = os.path.join(directory, checkpoint_dir.RECORD_NAME)
  with open(path) as f:
    recorded = json.load(f)
  assert machine.numerics(recorded["machine"]) == machine.numerics(
      machine.fingerprint())
  # A checkpoint exists: the run resumes, on the same machine without a word.
  open(os.path.join(directory, checkpoint_dir.STATE_FILE), "w").close()
  assert checkpoint_dir.prepare_directory(directory, "legacy", hparams) == 3
  assert capsys.readouterr().err == ""
  # Started elsewhere: it resumes and says so, in one line.
  recorded["machine"] = other_cpu(recorded["machine"])
  with open(path, "w") as f:
    json.dump(recorded, f)
  assert checkpoint_dir.prepare_directory(directory, "legacy", hparams) == 3
  note = capsys.readouterr().err.splitlines()
  assert len(note) == 1 and note[0].startswith("note: --checkpoint_dir ")
  assert "Some Other CPU" in note[0] and "not end bit-identical" in note[0]
  # A record from before fingerprints: nothing to compare, nothing said.
  del recorded["machine"]
  with open(path, "w") as f:
    json.dump(recorded, f)
  checkpoint_dir.prepare_directory(directory, "legacy", hparams)
  assert capsys.readouterr().err == ""


@pytest.mark.parametrize("kernels", ["native", "portable"])
def test_kernels_flag_sets_tensorflows_kernels(kernels, tmp_path, data_dir):
  """--kernels sets the environment TensorFlow starts with; the run's record
  (hparams.json) says which, and so which numbers the seed gives."""
  directory = tmp_path / "run"
  proc = run_module("legacy.hw04", f"--kernels={kernels}", "--seed=1",
                    "--training_epochs=1", "--train_limit=300",
                    f"--checkpoint_dir={directory}",
                    env={"MNIST_DATA_DIR": data_dir}, timeout=120)
  assert proc.returncode == 0 and proc.stderr == "", proc.stderr
  with open(directory / checkpoint_dir.RECORD_NAME) as f:
    settings = json.load(f)["machine"]["settings"]
  expected = {**console.kernel_environment(kernels), "TF_NUM_INTRAOP_THREADS": "1"}
  assert {k: v for k, v in settings.items() if k != "TF_NUM_INTEROP_THREADS"} == expected
