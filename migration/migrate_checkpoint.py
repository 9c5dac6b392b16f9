"""Migrates a legacy TF1 checkpoint into a Keras .keras model, a SavedModel,
or a modern run that goes on training.

  python -m modern.migrate_checkpoint --checkpoint /tmp/hw05
                                      --save_path /tmp/hw05.keras
                                      [--export_dir BASE] [--activation tanh]
  python -m modern.migrate_checkpoint --checkpoint ckpt/legacy
                                      --checkpoint_dir ckpt/modern
                                      [--save_path /tmp/hw05.keras]

Keras 3 cannot read a TF1 checkpoint, and a tf.compat.v1.train.Saver handed
Keras 3 variables writes and reads a useless single key. So the checkpoint is
read by variable name (tf.train.load_checkpoint, legacy/checkpoints.py),
each name is mapped to its Keras variable (names.py), and the value is
assigned to it.

--checkpoint is the prefix a legacy run's --save_path wrote, or a directory
with a `checkpoint` state file (its latest checkpoint). The layer sizes come
from the variable shapes; the activation, which a checkpoint does not hold,
from --activation or the run's hparams.json beside it (a --checkpoint_dir
run keeps one; the two must agree), else sigmoid (the scripts'). The model
written is the plain keras.Sequential that modern's --save_path writes
(layers hidden1 .. softmax_linear), without Dropout layers (they act only in
training) and without an optimizer. It loads with
keras.saving.load_model(path, safe_mode=True), without this project's code,
and is written atomically: a failure leaves nothing behind. --export_dir
(with or without --save_path) exports the same model as a modern run's
--export_dir does (modern/export.py).

--with_optimizer carries the optimizer state of a legacy --checkpoint_dir
run too (optimizer_state.py): Adam's slots and the step count, checked
against beta1_power, with the optimizer's settings from the run's
hparams.json. --save_path then writes the file modern's --save_path writes
(compiled, Dropout layers included); --checkpoint_dir DIR (new or empty;
it implies --with_optimizer) writes a modern run that
`python -m modern.hw0N --checkpoint_dir DIR` resumes after the legacy
run's last saved epoch.
"""

from absl import flags

from common import cli
from common import flags as common_flags
from common import hparams as hp
from common import serving
from legacy import evaluate as legacy_evaluate
from modern import port as modern_port

FLAGS = flags.FLAGS


def define_flags() -> None:
  legacy_evaluate.define_checkpoint_flags()
  flags.DEFINE_string("save_path", None,
                      "Write the Keras model here: a .keras file, replaced "
                      "only once complete.")
  flags.DEFINE_boolean("with_optimizer", False,
                       "Carry the optimizer state too (Adam's slots, the step "
                       "count) from a legacy --checkpoint_dir run, its "
                       "settings from the run's hparams.json.")
  common_flags.define_new_run_dir_flag(
      "Write a modern run here (a new or empty directory) that "
      "`python -m modern.hw0N --checkpoint_dir DIR` resumes; implies "
      "--with_optimizer.")
  common_flags.define_export_flags()
  flags.register_multi_flags_validator(
      ["save_path", "export_dir", "checkpoint_dir"],
      lambda f: any(v is not None for v in f.values()),
      message="give --save_path, --export_dir or --checkpoint_dir (or "
              "several): where to write the model")
  flags.register_validator(
      "save_path", modern_port.is_keras_path,
      message="--save_path must end in .keras (Keras' model file format)")
  flags.register_validator("save_path", common_flags.in_existing_directory,
                           message="--save_path must be in an existing directory")
  common_flags.make_key_flags(__name__)


def build_model(checkpoint):
  """The plain keras.Sequential of the checkpoint's MLP, holding its values.

  `checkpoint` is a legacy.checkpoints.MlpCheckpoint. The layers are
  modern's own (mlp.inference, without dropout), wrapped as modern's
  --save_path wraps them, so that the file needs no project code.
  """
  # pylint: disable=g-import-not-at-top
  from migration import names
  from modern import mlp
  model = mlp.plain_model(mlp.inference(checkpoint.hidden_units,
                                        checkpoint.activation))
  # variable.path is unique, variable.name is only "kernel" or "bias".
  variables = {v.path.removeprefix(f"{model.name}/"): v for v in model.weights}
  mapping = names.name_map(checkpoint.hidden_units)
  if sorted(mapping.values()) != sorted(variables):  # none may keep its initial value
    raise RuntimeError(f"the name map {mapping} does not cover the model's "
                       f"variables {sorted(variables)}")
  for legacy_name, keras_path in mapping.items():
    variables[keras_path].assign(checkpoint.values[legacy_name])
  return model


def main() -> None:
  # Imported here: the command imports TensorFlow quietly first.
  from legacy import checkpoints as legacy_checkpoints  # pylint: disable=g-import-not-at-top
  from modern import checkpoints as modern_checkpoints  # pylint: disable=g-import-not-at-top
  from modern import export  # pylint: disable=g-import-not-at-top
  target = serving.prepare_export(FLAGS.export_dir, FLAGS.export_version)
  checkpoint = legacy_checkpoints.read_mlp_checkpoint(FLAGS.checkpoint,
                                                      FLAGS.activation)
  sizes = hp.layer_sizes(checkpoint.hidden_units)
  what = (f"{' -> '.join(map(str, sizes))}, {checkpoint.activation}, "
          f"from the legacy checkpoint {checkpoint.prefix}")
  if FLAGS.with_optimizer or FLAGS.checkpoint_dir:
    model = _migrate_run(checkpoint, what)
  else:
    model = build_model(checkpoint)
  if FLAGS.save_path:
    modern_checkpoints.save_model(model, FLAGS.save_path)
    print(f"Wrote {FLAGS.save_path}: {what}")
  if target:
    export.export(model, target)
    print(f"Exported {target.path}: {what}")


def _migrate_run(checkpoint, what: str):
  """--with_optimizer: the whole run's state; --checkpoint_dir written. The model."""
  # pylint: disable=g-import-not-at-top
  from migration import optimizer_state
  run = optimizer_state.read_legacy_run(checkpoint.prefix, checkpoint.activation)
  if run.hparams.optimizer != "adam":
    print(f"{checkpoint.prefix} trained with gradient descent, which keeps no "
          "optimizer state but the step count: migrating global_step "
          f"{run.step} alone")
  if FLAGS.checkpoint_dir:
    optimizer_state.write_modern_run(run, FLAGS.checkpoint_dir)
    print(f"Wrote {FLAGS.checkpoint_dir}: a modern run after epoch "
          f"{run.training.epoch}, with {run.describe()}, {what}; resume it "
          "with " + optimizer_state.resume_command(
              "modern", run.record, FLAGS.checkpoint_dir))
  return optimizer_state.keras_model(run)


if __name__ == "__main__":
  cli.run_command(define_flags, main)
