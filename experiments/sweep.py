r"""Trains one configuration over many seeds, in one or both ports, and writes
a small report: your own settings, the study's machinery (study.py).

    python -m experiments.sweep --script=hw05 --seeds=1-10 --out=out/nodrop \
        -- --keep_prob=1 --init=xavier

Flags after `--` are the training scripts' own (`python -m legacy.hw05
--helpshort`), with `--script`'s defaults. Runs are recorded in
OUT/runs.jsonl as they finish; the same command again skips what is
recorded, so an interrupted sweep goes on where it stopped. OUT/README.md
has the table in the seed's format and the figures.
"""

import dataclasses
import os

from absl import app
from absl import flags

from common import errors
from common import flags as common_flags
from common import hparams as hp
from experiments import report
from experiments import runner

FLAGS = flags.FLAGS

flags.DEFINE_enum("script", "hw05", list(hp.SCRIPTS), "Whose defaults to start from.")
flags.DEFINE_list("ports", list(runner.PORTS), "legacy, modern, or legacy,modern for both.")
flags.DEFINE_string("seeds", "1-10", "Seeds, e.g. 1-10 or 1,4,7.")
flags.DEFINE_string("out", None, "Directory for runs.jsonl, README.md and the figures.")
flags.DEFINE_string("data_dir", None, "MNIST files (else $MNIST_DATA_DIR, else "
                    "MNIST_data/); missing files are downloaded.")
runner.define_worker_flags()
flags.mark_flag_as_required("out")
flags.register_validator("ports", lambda ports: bool(ports) and set(ports) <= set(runner.PORTS),
                         message="--ports must be legacy, modern or legacy,modern")


flags.register_validator("seeds", runner.is_seeds_text,
                         message="--seeds must be seeds like 1-10 or 1,4,7: "
                                 f"in 0..{hp.SEED_MAX}, at most "
                                 f"{runner.MAX_SEEDS} of them")


def config_from_args(script: str, args) -> runner.Config:
  """The configuration the training flags in `args` describe; flag errors
  are one line and exit status 2, as in the training scripts."""
  flag_values = flags.FlagValues()
  common_flags.define_flags(script, flag_values)
  try:
    unparsed = flag_values(["sweep", *args])[1:]
  except flags.Error as e:
    errors.fail(f"{e} (in the training flags after --)", 2)
  if unparsed:
    errors.fail(f"unexpected arguments {' '.join(unparsed)!r}; training "
                "flags go after --, e.g. -- --keep_prob=1", 2)
  run_options = ("seed", "data_dir", "save_path", "verbose", "threads", "kernels",
                 "checkpoint_dir", "logdir")
  given = [a for a in args if a.lstrip("-").split("=")[0] in run_options]
  if given:
    errors.fail(f"{given[0]} is the sweep's to set, not a training flag here: "
                "use --seeds / --data_dir / --kernels (every run has one "
                "thread)", 2)
  hparams = common_flags.hparams_from_flags(flag_values)
  defaults = hp.SCRIPTS[script]
  changes = tuple((field.name, getattr(hparams, field.name))
                  for field in dataclasses.fields(hp.HParams)
                  if getattr(hparams, field.name) != getattr(defaults, field.name))
  label = " ".join([script, *args]) if args else f"{script} as shipped"
  return runner.Config(label, script, changes)


def write_report(out_dir, config, ports, seeds, records) -> str:
  columns = {port: config.records(port, seeds, records) for port in ports}
  lines = [f"# {config.label}", "",
           f"Seeds {', '.join(map(str, seeds))}; written by "
           "`python -m experiments.sweep` from runs.jsonl beside this file.", ""]
  lines += report.seed_format_table(columns)
  report.accuracy_strip_plot(os.path.join(out_dir, "accuracy.png"),
                             {config.label: columns}, "Test accuracy")
  report.cost_curves(os.path.join(out_dir, "costs.png"), {config.label: columns},
                     "Per-epoch cost of every run")
  lines += ["", "![accuracy](accuracy.png)", "", "![costs](costs.png)", "",
            "Recorded on:", "",
            *report.machine_lines(r for column in columns.values() for r in column if r)]
  path = os.path.join(out_dir, "README.md")
  report.write_text(path, lines)
  return path


def main(argv) -> None:
  config = config_from_args(FLAGS.script, argv[1:])
  seeds = runner.seeds_from_text(FLAGS.seeds)
  with runner.one_line_errors(FLAGS.out):
    runner.prepare_out_dir(FLAGS.out)
    runner.verify_data(FLAGS.data_dir)
    records = runner.run_sweep(config.runs(FLAGS.ports, seeds), FLAGS.out,
                               FLAGS.data_dir, **runner.worker_options())
  print(f"report: {write_report(FLAGS.out, config, FLAGS.ports, seeds, records)}")


if __name__ == "__main__":
  app.run(main, flags_parser=common_flags.parse_flags)
