"""The experiment runner and its reports (experiments/): real sweeps of tiny
runs (1-2 epochs, 300 examples), and the study's scoring and report on
records made up to put it to the test."""

import dataclasses
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

from matplotlib import image as mpimg
import pytest

from common import console
from common import hparams as hp
from common import machine
from helpers import REPO_ROOT, run_module
from experiments import runner
from experiments import study

TINY = ("--training_epochs=1", "--train_limit=300")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sweep(out, *training_flags, seeds="1-2", ports="legacy,modern", workers=2):
  return run_module("experiments.sweep", f"--seeds={seeds}", f"--ports={ports}",
                    f"--out={out}", f"--workers={workers}", "--", *training_flags)


def jsonl(out):
  with open(os.path.join(out, runner.RUNS_FILE)) as f:
    return [json.loads(line) for line in f]


def table(markdown_path):
  """{first cell: [other cells]} for every row of every table in the file."""
  rows = {}
  with open(markdown_path) as f:
    for line in f:
      if line.startswith("| ") and not line.startswith("|---"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.setdefault(cells[0], cells[1:])
  return rows


def assert_png(path):
  with open(path, "rb") as f:
    assert f.read(8) == PNG_SIGNATURE, path
  pixels = mpimg.imread(path)
  assert pixels.ndim == 3 and min(pixels.shape[:2]) > 200, pixels.shape
  # Something is drawn: not a blank page.
  assert pixels[..., :3].std() > 0.05, path


# ---------------------------------------------------------------- the sweep


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory, data_dir):
  out = str(tmp_path_factory.mktemp("sweep"))
  return out, sweep(out, *TINY)


def test_sweep_records_every_run_as_a_json_line(tiny_sweep):
  out, result = tiny_sweep
  assert result.returncode == 0, result.stderr
  assert result.stderr == ""
  records = jsonl(out)
  assert sorted((r["port"], r["hparams"]["seed"]) for r in records) == [
      ("legacy", 1), ("legacy", 2), ("modern", 1), ("modern", 2)]
  for record in records:
    assert record["hparams"] == dataclasses.asdict(dataclasses.replace(
        hp.SCRIPTS["hw05"], seed=record["hparams"]["seed"], training_epochs=1,
        train_limit=300)) | {"hidden_units": [256, 128, 256]}
    assert len(record["epoch_costs"]) == 1 and record["epoch_costs"][0] > 0
    assert 0 <= record["accuracy"] <= 1
    assert record["collapsed"] == (record["accuracy"] < hp.COLLAPSE_THRESHOLD)
    assert record["seconds"] > 0 and record["threads"] == 1
    assert record["key"] == runner.run_from_record(record).key
    # The machine it ran on, read back: one intra-op thread, native kernels.
    fingerprint = record["machine"]
    assert fingerprint["settings"]["TF_NUM_INTRAOP_THREADS"] == "1"
    assert "TF_ENABLE_ONEDNN_OPTS" not in fingerprint["settings"]
    assert fingerprint["cores"] >= 1 and fingerprint["tensorflow"]
    assert machine.numerics(fingerprint) == machine.numerics(
        runner.worker_fingerprint("native"))


@pytest.mark.parametrize("port", runner.PORTS)
def test_the_command_prints_the_sweeps_record_of_the_same_run(tiny_sweep, port):
  """A sweep's worker trains on one TensorFlow thread; the commands do too
  (--threads=1 by default), so `make <port>-hw05 ARGS=--seed=N` prints what
  the report recorded for seed N. On TensorFlow's own thread count the
  costs differ from the 7th digit on."""
  out, _ = tiny_sweep
  record = next(r for r in jsonl(out)
                if r["port"] == port and r["hparams"]["seed"] == 1)
  proc = run_module(f"{port}.hw05", "--seed=1", *TINY)
  assert proc.returncode == 0, proc.stderr
  printed = [line for line in proc.stdout.splitlines()
             if line.startswith(("Epoch: ", "Accuracy: "))]
  assert printed == [console.epoch_line(1, record["epoch_costs"][0]),
                     console.accuracy_line(record["accuracy"])]


def test_sweep_shows_progress_and_time_left(tiny_sweep):
  _, result = tiny_sweep
  progress = re.findall(r"^\[(\d)/4\] (legacy|modern) .* seed (\d): "
                        r"(\d\.\d{4}) \(\d+ s\); about .* left$",
                        result.stdout, re.MULTILINE)
  assert [p[0] for p in progress] == ["1", "2", "3", "4"], result.stdout
  assert result.stdout.startswith("4 runs: 0 already recorded")


def test_sweep_report_table_matches_the_records(tiny_sweep):
  out, _ = tiny_sweep
  rows = table(os.path.join(out, "README.md"))
  by_port = {port: sorted((r for r in jsonl(out) if r["port"] == port),
                          key=lambda r: r["hparams"]["seed"])
             for port in runner.PORTS}
  for i in range(2):
    assert rows[f"({i + 1})"] == [f"{by_port[port][i]['accuracy']:.4f}"
                                  for port in runner.PORTS]
  assert rows["mean"] == [
      f"{statistics.mean(r['accuracy'] for r in by_port[port]):.4f}"
      for port in runner.PORTS]


def test_sweep_figures_are_png(tiny_sweep):
  out, _ = tiny_sweep
  for name in ("accuracy.png", "costs.png"):
    assert_png(os.path.join(out, name))


def test_the_same_sweep_again_trains_nothing(tiny_sweep):
  out, _ = tiny_sweep
  with open(os.path.join(out, runner.RUNS_FILE), "rb") as f:
    before = f.read()
  result = sweep(out, *TINY)
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith("4 runs: 4 already recorded")
  assert "[1/" not in result.stdout
  with open(os.path.join(out, runner.RUNS_FILE), "rb") as f:
    assert f.read() == before


def _default_sigint():
  signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_sweep_until_first_record(out, seeds, workers, epochs, **popen_args):
  """A legacy sweep of tiny runs in its own process group (so that a signal
  to the group reaches its workers too), once its first run is recorded."""
  runs_file = os.path.join(out, runner.RUNS_FILE)
  command = [sys.executable, "-m", "experiments.sweep", f"--seeds={seeds}",
             "--ports=legacy", f"--out={out}", f"--workers={workers}", "--",
             f"--training_epochs={epochs}", "--train_limit=300"]
  process = subprocess.Popen(command, cwd=REPO_ROOT, start_new_session=True,
                             # Ctrl-C as on a terminal, also when the tests
                             # run where SIGINT is ignored (a background job).
                             preexec_fn=_default_sigint, **popen_args)
  deadline = time.monotonic() + 180
  while not (os.path.exists(runs_file) and _lines(runs_file)):
    assert process.poll() is None and time.monotonic() < deadline
    time.sleep(0.1)
  return process


def _lines(path):
  with open(path) as f:
    return f.read().count("\n")


def test_an_interrupted_sweep_goes_on_where_it_stopped(tmp_path, data_dir):
  out = str(tmp_path)
  runs_file = os.path.join(out, runner.RUNS_FILE)
  process = start_sweep_until_first_record(out, seeds="1-3", workers=1,
                                           epochs=2, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
  os.killpg(process.pid, signal.SIGKILL)
  process.wait()
  with open(runs_file) as f:
    kept = f.read()
  done_before = kept.count("\n")
  assert 1 <= done_before < 3
  # A kill while writing leaves a line cut short: it must not count.
  with open(runs_file, "a") as f:
    f.write('{"key": "cut sh')

  result = sweep(out, "--training_epochs=2", "--train_limit=300",
                 seeds="1-3", ports="legacy", workers=1)
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith(
      f"3 runs: {done_before} already recorded in {runs_file}, "
      f"{3 - done_before} to go")
  with open(runs_file) as f:
    text = f.read()
  assert text.startswith(kept)  # what was recorded is kept as it was
  records = runner.read_records(out)
  assert sorted(r["hparams"]["seed"] for r in records.values()) == [1, 2, 3]


def _group_alive(pgid):
  try:
    os.killpg(pgid, 0)
  except ProcessLookupError:
    return False
  return True


def test_ctrl_c_stops_the_sweep_with_one_line(tmp_path, data_dir):
  out = str(tmp_path)
  process = start_sweep_until_first_record(out, seeds="1-4", workers=2,
                                           epochs=3, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
  os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C on a terminal does
  _, stderr = process.communicate(timeout=60)
  assert process.returncode == 130
  assert stderr == (f"error: interrupted; the finished runs are kept in {out}: "
                    "run the same command again to go on\n")
  # No worker is left behind in the process group (a terminated worker
  # may stay a zombie for a moment, until init reaps it).
  deadline = time.monotonic() + 20
  while _group_alive(process.pid):
    assert time.monotonic() < deadline, "a worker outlived the sweep"
    time.sleep(0.2)
  assert len(runner.read_records(out)) >= 1


@pytest.mark.parametrize("args, message", [
    (["--seeds=1-x", "--out=OUT"], "--seeds must be seeds like 1-10"),
    (["--ports=tf1", "--out=OUT"], "--ports must be legacy, modern"),
    (["--out=OUT", "--", "--keep_prob=2"], "--keep_prob must be in (0, 1]"),
    (["--out=OUT", "--", "--seed=4"], "use --seeds"),
    (["--out=OUT", "--", "--threads=2"], "is the sweep's to set"),
    (["--out=OUT", "extra"], "unexpected arguments 'extra'"),
    (["--out=OUT", "--", "--keep_prob=1", "extra"], "unexpected arguments 'extra'"),
    (["--out=/proc/no/such"], "cannot create --out /proc/no/such"),
])
def test_sweep_bad_input_is_one_line(tmp_path, args, message):
  args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
  result = run_module("experiments.sweep", *args)
  assert result.returncode == 2
  assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
  assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the study

SEEDS = study.Seeds(hw05_screen=(1, 2, 3), hw04_screen=(1, 2),
                    hw05_final=(1, 2, 3, 4), hw04_final=(1, 2), conclusion=(1, 2))
# The candidate the made-up records make match the seed on every number.
MATCHING_HW05 = study.HW05_CANDIDATES[4]  # xavier / N(0,1), drop all 4
MATCHING_HW04 = study.HW04_CANDIDATES[7]  # U(-1,1) / N(0,1), lr 0.5


def made_up_record(port, config, seed, matching):
  """A record as runner.train_once writes it, with chosen numbers.

  A matching hw05 candidate: one collapse in three (at 20%), good runs at
  94.2%, epoch-1 cost 8, final costs 0.9 (good) and 5 (collapsed). Every
  other candidate: never collapses, 97.5%, final cost 0.2.
  """
  hparams = config.hparams(seed)
  if hparams.optimizer == "adam" and matching:
    collapsed = seed % 3 == 2
    accuracy = 0.2 if collapsed else 0.942
    costs = [8.0, 6.0, 5.0] if collapsed else [8.0, 2.0, 0.9]
  elif matching:  # hw04
    accuracy, costs = 0.9655, [1.0, 0.5, 0.2]
  else:
    accuracy, costs = 0.975, [2.0, 1.0, 0.2 + 0.01 * seed]
  return {"key": runner.Run(port, hparams).key, "port": port,
          "hparams": dataclasses.asdict(hparams), "epoch_costs": costs,
          "accuracy": accuracy, "collapsed": runner.is_collapsed(accuracy),
          "error": None, "seconds": 1.0, "threads": 1}


def made_up_records():
  records = {}
  for script, candidates, matching in (("hw05", study.HW05_CANDIDATES, MATCHING_HW05),
                                       ("hw04", study.HW04_CANDIDATES, MATCHING_HW04)):
    configs = (*candidates, study.SHIPPED[script],
               *(c for c in study.CONCLUSION if c.script == script))
    for config in configs:
      for port in runner.PORTS:
        for seed in sorted({*SEEDS.screen(script), *SEEDS.final(script),
                            *SEEDS.conclusion}):
          record = made_up_record(port, config, seed, config == matching)
          records[record["key"]] = record
  return records


def test_score_puts_the_candidate_that_matches_every_number_first():
  records = made_up_records()
  for script, matching in (("hw05", MATCHING_HW05), ("hw04", MATCHING_HW04)):
    scored = study.score(study.CANDIDATES[script], study.CRITERIA[script],
                         SEEDS.screen(script), records, runner.Scale())
    assert scored[0].config == matching
    assert scored[0].matches == len(study.CRITERIA[script])
    assert all(s.matches < len(study.CRITERIA[script]) for s in scored[1:])
    finalists = study.finalists(scored, script, study.FINALISTS[script])
    assert finalists[0] == matching
    # The shipped defaults are always among the finalists, to compare with.
    assert any(c.hparams(0) == study.SHIPPED[script].hparams(0) for c in finalists)


def test_criteria_judge_the_seeds_numbers():
  def record(accuracy, costs):
    return {"accuracy": accuracy, "epoch_costs": costs,
            "collapsed": runner.is_collapsed(accuracy)}
  seed_like = [record(a, [10.0, 0.9 if a >= 0.9 else 5.0])
               for a in study.SEED_HW05_ACCURACY]
  assert all(ok for _, ok, _ in (c.judge(seed_like) for c in study.HW05_CRITERIA))
  # Collapses at 66-86% are not the seed's (10-43%).
  mild = [record(a, [10.0, 1.0]) for a in (0.95, 0.66, 0.86, 0.95, 0.94)]
  text, ok, _ = study.HW05_CRITERIA[1].judge(mild)
  assert (text, ok) == ("max 86.0%", False)
  # No run collapsed: nothing to compare the collapsed runs' cost with.
  assert study.HW05_CRITERIA[5].judge([record(0.95, [3.0, 0.9])])[:2] == ("-", False)
  # A cost that rises once is not "falls every epoch".
  assert not study.HW04_CRITERIA[1].judge([record(0.965, [1.0, 0.5, 0.6])])[1]


@pytest.fixture(scope="module")
def made_up_study(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("study"))
  records = made_up_records()
  with open(os.path.join(out, runner.RUNS_FILE), "w") as f:
    for record in records.values():
      f.write(json.dumps(record) + "\n")
  seed_flags = [f"--{field}_seeds={','.join(map(str, seeds))}"
                for field, seeds in dataclasses.asdict(SEEDS).items()]
  result = run_module("experiments.study", f"--out={out}", "--report_only",
                      *seed_flags)
  return out, records, result


def test_study_report_tables_match_the_records(made_up_study):
  out, records, result = made_up_study
  assert result.returncode == 0, result.stderr
  assert result.stderr == ""
  rows = table(os.path.join(out, "README.md"))
  shipped = {port: study.SHIPPED["hw05"].records(port, SEEDS.hw05_final, records)
             for port in runner.PORTS}
  for i, seed_accuracy in enumerate(study.SEED_HW05_ACCURACY[:len(SEEDS.hw05_final)]):
    assert rows[f"({i + 1})"] == [f"{seed_accuracy:.4f}", *(
        f"{shipped[port][i]['accuracy']:.4f}" for port in runner.PORTS)]
  assert rows[MATCHING_HW05.label][-1] == f"6 of {len(study.HW05_CRITERIA)}"
  assert rows[MATCHING_HW05.label][0] == "33% ✓"
  with open(os.path.join(out, "README.md")) as f:
    text = f.read()
  assert (f"**hw05 reconstruction: {MATCHING_HW05.label}** (6 of 6 of the "
          "seed's numbers over both ports' runs; NOT the shipped default") in text
  # hw04's own match wins over the candidate sharing hw05's initializers,
  # which the made-up records make miss hw04's accuracy.
  assert f"**hw04 reconstruction: {MATCHING_HW04.label}** (2 of 2" in text


def test_hw04_finalists_include_hw05s_initializers():
  finals = study.plan_finalists(made_up_records(), SEEDS, runner.Scale())
  assert finals["hw05"][0] == MATCHING_HW05
  partner = study.partner(MATCHING_HW05, "hw04")
  assert partner.label == "xavier / N(0,1), lr 1"
  assert finals["hw04"][0] == MATCHING_HW04 and partner in finals["hw04"]
  chosen = study.choose(finals, made_up_records(), SEEDS, runner.Scale())
  assert chosen["hw05"].config == MATCHING_HW05
  assert chosen["hw04"].config == MATCHING_HW04


def test_study_report_figures_are_png(made_up_study):
  out, _, _ = made_up_study
  with open(os.path.join(out, "README.md")) as f:
    figures = re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", f.read())
  assert len(figures) == 10
  for name in figures:
    assert_png(os.path.join(out, name))


def test_study_bad_seeds_are_one_line(tmp_path):
  result = run_module("experiments.study", f"--out={tmp_path}",
                      "--hw05_final_seeds=ten")
  assert result.returncode == 2
  assert result.stderr.count("\n") == 1
  assert "--hw05_final_seeds must be seeds like 1-10" in result.stderr


def test_hw04_takes_hw05s_initializers_when_they_match_as_well():
  records = made_up_records()
  partner = study.partner(MATCHING_HW05, "hw04")
  for port in runner.PORTS:
    for seed in {*SEEDS.screen("hw04"), *SEEDS.final("hw04")}:
      record = made_up_record(port, partner, seed, matching=True)
      records[record["key"]] = record
  finals = study.plan_finalists(records, SEEDS, runner.Scale())
  chosen = study.choose(finals, records, SEEDS, runner.Scale())
  assert chosen["hw04"].config == partner


def test_a_tie_keeps_the_shipped_defaults():
  shipped, = [c for c in study.HW05_CANDIDATES
              if c.hparams(0) == study.SHIPPED["hw05"].hparams(0)]
  records = made_up_records()
  for port in runner.PORTS:
    for seed in {*SEEDS.screen("hw05"), *SEEDS.final("hw05")}:
      record = made_up_record(port, shipped, seed, matching=True)
      if not record["collapsed"]:  # still in the band, but farther from its middle
        record["accuracy"] = 0.950
      records[record["key"]] = record
  finals = study.plan_finalists(records, SEEDS, runner.Scale())
  assert finals["hw05"][:2] == [MATCHING_HW05, shipped]  # ranked second, tied
  assert study.choose(finals, records, SEEDS, runner.Scale())["hw05"].config == shipped
