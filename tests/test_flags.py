"""Tests of the command-line flags shared by both ports (common/flags.py).

The flags are parsed before TensorFlow is imported, so a rejected value
costs a subprocess of a fraction of a second: every entry point is run as a
user runs it. The full table of values is checked in-process against a
fresh FlagValues, for both scripts' defaults.
"""

import dataclasses
import re

from absl import flags
import pytest

from common import flags as common_flags
from common import hparams as hp
from helpers import assert_one_error_line
from helpers import run_module

ENTRY_POINTS = ["legacy.hw04", "legacy.hw05", "modern.hw04", "modern.hw05"]

# (arguments, text the one error line must contain)
BAD_ARGUMENTS = [
    (["--kernels=fast"], "--kernels"),
    (["--threads=-1"], "--threads"),
    (["--threads=two"], "--threads"),
    (["--keep_prob=0"], "--keep_prob"),
    (["--keep_prob=1.5"], "--keep_prob"),
    (["--keep_prob=-0.3"], "--keep_prob"),
    (["--keep_prob=nan"], "--keep_prob"),
    (["--learning_rate=0"], "--learning_rate"),
    (["--learning_rate=-0.1"], "--learning_rate"),
    (["--learning_rate=inf"], "--learning_rate"),
    (["--learning_rate=fast"], "--learning_rate"),
    (["--epsilon=0"], "--epsilon"),
    (["--epsilon=-1e-8"], "--epsilon"),
    (["--beta1=1"], "--beta1"),
    (["--beta1=-0.1"], "--beta1"),
    (["--beta2=1.0"], "--beta2"),
    (["--beta2=2"], "--beta2"),
    (["--training_epochs=0"], "--training_epochs"),
    (["--training_epochs=-3"], "--training_epochs"),
    (["--batch_size=0"], "--batch_size"),
    (["--batch_size=-100"], "--batch_size"),
    (["--batch_size=55001"], "--batch_size"),
    (["--train_limit=500", "--batch_size=501"], "--batch_size"),
    (["--train_limit=0"], "--train_limit"),
    (["--train_limit=55001"], "--train_limit"),
    (["--hidden_units="], "--hidden_units"),
    (["--hidden_units=256,,128"], "--hidden_units"),
    (["--hidden_units=256,0"], "--hidden_units"),
    (["--hidden_units=-5"], "--hidden_units"),
    (["--hidden_units=1.5"], "--hidden_units"),
    (["--hidden_units=a,b"], "--hidden_units"),
    (["--init=uniform"], "--init"),
    (["--init=uniform:0"], "--init"),
    (["--init=uniform:-1"], "--init"),
    (["--init=uniform:inf"], "--init"),
    (["--init=normal:abc"], "--init"),
    (["--init=gaussian:1"], "--init"),
    (["--init=xavier:1"], "--init"),
    (["--init=zeros:1"], "--init"),
    (["--bias_init=xavier"], "--bias_init"),
    (["--bias_init=normal:0"], "--bias_init"),
    (["--bias_init=normal"], "--bias_init"),
    (["--optimizer=sgd"], "--optimizer"),
    (["--activation=softmax"], "--activation"),
    (["--dropout_layers=none"], "--dropout_layers"),
    (["--no_such_flag=1"], "no_such_flag"),
    # Values the run cannot hold as the dtype they become (float32, int64,
    # the seeds both ports take), or a model that cannot fit in memory.
    (["--seed=-1"], "--seed"),
    (["--seed=4294967296"], "--seed"),
    (["--seed=18446744073709551616"], "--seed"),
    (["--training_epochs=100000000000000000000"], "--training_epochs"),
    (["--training_epochs=%d" % (common_flags.MAX_EPOCHS + 1)], "--training_epochs"),
    (["--epsilon=1e-300"], "--epsilon"),  # 0 in float32
    (["--epsilon=1e-40"], "--epsilon"),  # a float32 denormal: flushed to 0
    (["--learning_rate=1e39"], "--learning_rate"),  # inf in float32
    (["--keep_prob=1e-50"], "--keep_prob"),
    (["--beta2=0.99999999"], "--beta2"),  # 1.0 in float32
    (["--init=uniform:1e39"], "--init"),
    (["--init=normal:1e-50"], "--init"),
    (["--bias_init=uniform:4e38"], "--bias_init"),
    (["--threads=2147483648"], "--threads"),
    (["--hidden_units=1000000000"], "--hidden_units 1000000000 needs about"),
    (["--hidden_units=784,1000000000000"], "needs about"),
    (["--save_path=/"], "--save_path must name a file"),
    (["--save_path=model/"], "--save_path must name a file"),
]

# Run through every entry point: one of each way a command line can fail
# (a validator, a multi-flag validator, absl's own parsing, the positional
# check in cli.py).
EVERY_ENTRY_POINT_CASES = [
    (["--keep_prob=0"], "--keep_prob"),
    (["--train_limit=500", "--batch_size=501"], "--batch_size"),
    (["--bias_init=xavier"], "--bias_init"),
    (["--learning_rate=fast"], "--learning_rate"),
    (["--no_such_flag=1"], "no_such_flag"),
    (["stray"], "stray"),  # a positional argument
]
# Each run through one entry point, in turn, to keep the subprocesses few.
ONE_ENTRY_POINT_CASES = [
    (["--keep_prob=1.01"], "--keep_prob"),
    (["--learning_rate=-1"], "--learning_rate"),
    (["--epsilon=0"], "--epsilon"),
    (["--beta1=1"], "--beta1"),
    (["--beta2=-0.5"], "--beta2"),
    (["--training_epochs=0"], "--training_epochs"),
    (["--batch_size=0"], "--batch_size"),
    (["--batch_size=55001"], "--batch_size"),
    (["--hidden_units=256,x"], "--hidden_units"),
    (["--init=uniform:"], "--init"),
    (["--optimizer=sgd"], "--optimizer"),
    (["--activation=softmax"], "--activation"),
    (["--epsilon=1e-300"], "--epsilon"),
    (["--seed=4294967296"], "--seed"),
    (["--init=uniform:1e39"], "--init"),
    (["--training_epochs=100000000000000000000"], "--training_epochs"),
]
SUBPROCESS_CASES = (
    [(module, args, name) for module in ENTRY_POINTS
     for args, name in EVERY_ENTRY_POINT_CASES]
    + [(ENTRY_POINTS[i % len(ENTRY_POINTS)], args, name)
       for i, (args, name) in enumerate(ONE_ENTRY_POINT_CASES)])

# Boundary values that must be accepted.
GOOD_ARGUMENTS = [
    ["--keep_prob=1"],
    ["--keep_prob=0.01"],
    ["--beta1=0", "--beta2=0"],
    ["--beta1=0.999", "--beta2=0.9999"],
    ["--learning_rate=1e-30"],
    ["--epsilon=1e-12"],
    ["--training_epochs=1"],
    ["--batch_size=1"],
    ["--batch_size=55000"],
    ["--train_limit=500", "--batch_size=500"],
    ["--train_limit=55000"],
    ["--hidden_units=7"],
    ["--hidden_units=1,2,3,4,5"],
    ["--init=xavier", "--bias_init=zeros"],
    ["--init=zeros", "--bias_init=uniform:0.5"],
    ["--init=normal:0.01", "--bias_init=normal:2"],
    ["--optimizer=gd", "--activation=relu", "--dropout_layers=hidden"],
    ["--seed=0"],
    ["--seed=4294967295"],
    ["--training_epochs=%d" % common_flags.MAX_EPOCHS],
    ["--epsilon=1.2e-38"],
    ["--init=uniform:3.4e38"],
    ["--beta2=0.9999999"],
    ["--hidden_units=1024,1024"],
    ["--save_path=new/dir/model"],  # created when the run starts
]


def fresh_flags(script):
  flag_values = flags.FlagValues()
  common_flags.define_flags(script, flag_values)
  return flag_values


@pytest.mark.parametrize("script", ["hw04", "hw05"])
@pytest.mark.parametrize("args,name", BAD_ARGUMENTS)
def test_bad_value_is_rejected(script, args, name):
  flag_values = fresh_flags(script)
  with pytest.raises(flags.Error) as raised:
    flag_values(["prog", *args])
  assert name in str(raised.value)


@pytest.mark.parametrize("script", ["hw04", "hw05"])
@pytest.mark.parametrize("args", GOOD_ARGUMENTS)
def test_boundary_value_is_accepted(script, args):
  flag_values = fresh_flags(script)
  assert flag_values(["prog", *args]) == ["prog"]
  common_flags.hparams_from_flags(flag_values)  # must not raise


@pytest.mark.parametrize("script", ["hw04", "hw05"])
def test_defaults_are_the_scripts_table(script):
  flag_values = fresh_flags(script)
  flag_values(["prog"])
  assert common_flags.hparams_from_flags(flag_values) == hp.SCRIPTS[script]


def test_flags_reach_hparams():
  flag_values = fresh_flags("hw04")
  flag_values(["prog", "--optimizer=adam", "--learning_rate=0.25",
               "--training_epochs=3", "--batch_size=50", "--keep_prob=0.5",
               "--beta1=0.1", "--beta2=0.2", "--epsilon=0.3",
               "--hidden_units=9,8", "--activation=tanh", "--init=xavier",
               "--bias_init=zeros", "--dropout_layers=hidden",
               "--train_limit=1000", "--seed=42"])
  assert common_flags.hparams_from_flags(flag_values) == hp.HParams(
      optimizer="adam", learning_rate=0.25, training_epochs=3, batch_size=50,
      keep_prob=0.5, beta1=0.1, beta2=0.2, epsilon=0.3, hidden_units=(9, 8),
      activation="tanh", init="xavier", bias_init="zeros",
      dropout_layers="hidden", train_limit=1000, seed=42)


@pytest.mark.parametrize("module,args,name", SUBPROCESS_CASES)
def test_entry_point_rejects_with_one_line_and_status_2(module, args, name):
  # Parsing fails before TensorFlow is imported: a run that gets past it
  # would train on the full set and hit the timeout.
  assert_one_error_line(run_module(module, *args, timeout=60), name, status=2)


def help_defaults(text):
  """{flag: default string, or None where help shows none} from --helpshort."""
  defaults, name = {}, None
  for line in text.splitlines():
    flag = re.match(r"^  --(?:\[no\])?(\w+):", line)
    if flag:
      name = flag.group(1)
      defaults[name] = None
      continue
    default = re.match(r"^    \(default: '(.*)'\)$", line)
    if default and name:
      defaults[name] = default.group(1)
  return defaults


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_entry_point_defaults_are_its_scripts(module):
  script = module.split(".")[1]
  run = run_module(module, "--helpshort", timeout=60)
  shown = help_defaults(run.stdout)
  for field in dataclasses.fields(hp.HParams):
    expected = getattr(hp.SCRIPTS[script], field.name)
    assert field.name in shown, f"--{field.name} missing from --helpshort"
    value = shown[field.name]
    if expected is None:
      assert value is None, field.name
    elif isinstance(expected, tuple):
      assert hp.parse_hidden_units(value) == expected, field.name
    else:
      assert type(expected)(value) == expected, field.name
