"""Migrates a modern run back into legacy TF1: a checkpoint that goes on training.

  python -m legacy.migrate_checkpoint --checkpoint ckpt/modern
                                      --checkpoint_dir ckpt/legacy
  python -m legacy.migrate_checkpoint --checkpoint /tmp/hw05.keras
                                      --save_path /tmp/hw05

--checkpoint is a modern --checkpoint_dir (its latest checkpoint) or a
.keras file saved compiled after training, with its optimizer's state (what
modern's --save_path and `modern.migrate_checkpoint --with_optimizer`
write). The weights, Adam's slots and the step count become TF1's variables
under TF1's names (optimizer_state.py): "hidden1/weights",
"hidden1/weights/Adam" and "/Adam_1", global_step, and beta1_power and
beta2_power recomputed from the step count as TF1's Adam would hold them.

--checkpoint_dir DIR (new or empty; from a modern --checkpoint_dir only,
whose record holds the run's flags, seed and epochs) writes a legacy run
that `python -m legacy.hw0N --checkpoint_dir DIR` resumes after the modern
run's last saved epoch. --save_path PREFIX writes one TF1 checkpoint, as
legacy's --save_path does (legacy.evaluate reads it). Both are written
whole or not at all.
"""

from absl import flags

from common import cli
from common import flags as common_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("checkpoint", None,
                      "The modern run: a --checkpoint_dir directory (its "
                      "latest checkpoint), or a .keras file saved with its "
                      "optimizer.")
  flags.mark_flag_as_required("checkpoint")
  common_flags.define_new_run_dir_flag(
      "Write a legacy run here (a new or empty directory) that "
      "`python -m legacy.hw0N --checkpoint_dir DIR` resumes.")
  flags.DEFINE_string("save_path", None,
                      "Write one TF1 checkpoint with this prefix, as "
                      "legacy's --save_path does.")
  flags.register_validator("save_path", common_flags.in_existing_directory,
                           message="--save_path must be in an existing directory")
  flags.register_multi_flags_validator(
      ["checkpoint_dir", "save_path"],
      lambda f: any(v is not None for v in f.values()),
      message="give --checkpoint_dir, --save_path or both: where to write "
              "the legacy checkpoint")
  common_flags.make_key_flags(__name__)


def main() -> None:
  # Imported here: the command imports TensorFlow quietly first.
  # pylint: disable=g-import-not-at-top
  from migration import optimizer_state
  run = optimizer_state.read_modern_run(FLAGS.checkpoint)
  if FLAGS.checkpoint_dir:  # before anything is written
    optimizer_state.check_resumable(run)
  what = f"from the modern {FLAGS.checkpoint}, with {run.describe()}"
  if FLAGS.checkpoint_dir:
    optimizer_state.write_legacy_run(run, FLAGS.checkpoint_dir)
    print(f"Wrote {FLAGS.checkpoint_dir}: a legacy run after epoch "
          f"{run.training.epoch}, {what}; resume it with "
          + optimizer_state.resume_command("legacy", run.record,
                                           FLAGS.checkpoint_dir))
  if FLAGS.save_path:
    optimizer_state.write_legacy_checkpoint(run, FLAGS.save_path)
    print(f"Wrote {FLAGS.save_path}: a TF1 checkpoint {what}")


if __name__ == "__main__":
  cli.run_command(define_flags, main)
