"""Builds the homework MLP in Keras, name for name with legacy/mlp.py.

  inference()  - the model: images -> logits, with Dropout layers.
  loss()       - softmax cross-entropy on the logits.
  training()   - the optimizer (FusedAdam: Keras' Adam on TF1's kernel).
  evaluation() - the accuracy metric.
  plain_model() - the same layers as a plain keras.Sequential, to save.
  keras_optimizer() - the optimizer as Keras' own class, to save.
"""

import keras
import tensorflow as tf

from common import hparams as hp

NON_FINITE_COST = "non-finite cost"


class MLP(keras.Sequential):
  """A Sequential model whose training step stops at a non-finite cost.

  fit() runs many steps per call for speed (steps_per_execution), so a
  callback sees the loss only every so many steps; checking inside the step
  stops at the very step that went non-finite, with optimizer.iterations
  counting it, as legacy checks every sess.run.
  """

  def train_step(self, data):
    logs = super().train_step(data)
    # The epoch's running mean is non-finite from the first bad step on.
    logs["loss"] = tf.debugging.check_numerics(logs["loss"], NON_FINITE_COST)
    return logs


def initializer(spec: hp.InitSpec) -> keras.initializers.Initializer:
  """The Keras twin of legacy's initial values (unseeded: set_random_seed decides)."""
  if spec.kind == "uniform":  # tf.random_uniform(shape, -L, L)
    return keras.initializers.RandomUniform(-spec.scale, spec.scale)
  if spec.kind == "normal":  # tf.random_normal(shape, stddev=S)
    return keras.initializers.RandomNormal(stddev=spec.scale)
  if spec.kind == "xavier":
    return keras.initializers.GlorotUniform()
  return keras.initializers.Zeros()


def inference(hidden_units, activation="sigmoid", init="uniform:1.0",
              bias_init="zeros", rate=0.0, dropout_layers="all"):
  """The MLP as a Sequential model (MLP) from 784 pixels to 10 logits.

  Args:
    hidden_units: sizes of the hidden layers, e.g. (256, 128, 256).
    activation: "sigmoid", "relu" or "tanh" for the hidden layers.
    init, bias_init: initializer specs ("uniform:1.0", "normal:1.0", ...).
    rate: the fraction Dropout drops (TF1's 1 - keep_prob, a number, where
      legacy feeds a keep_prob tensor); 0 builds no Dropout layer.
    dropout_layers: "hidden" (after each hidden layer), "input_hidden" (the
      input image too) or "all" (the logits too).

  Returns:
    the model, images [batch, 784] -> logits [batch, 10].
  """
  weights_spec = hp.parse_init(init, hp.WEIGHT_INITS)
  bias_spec = hp.parse_init(bias_init, hp.BIAS_INITS)
  names = hp.layer_names(len(hidden_units))
  model = MLP([keras.Input(shape=(hp.IMAGE_PIXELS,), name="X")], name="mlp")
  if rate > 0 and dropout_layers == "input_hidden":
    model.add(keras.layers.Dropout(rate=rate, name="input_dropout"))
  for name, units in zip(names, (*hidden_units, hp.NUM_CLASSES)):
    is_logits = name == names[-1]
    model.add(keras.layers.Dense(
        units, activation=None if is_logits else activation,
        kernel_initializer=initializer(weights_spec),
        bias_initializer=initializer(bias_spec), name=name))
    if rate > 0 and (not is_logits or dropout_layers == "all"):
      model.add(keras.layers.Dropout(rate=rate, name=f"{name}_dropout"))
  return model


def loss():
  """Mean softmax cross-entropy on logits against one-hot labels."""
  return keras.losses.CategoricalCrossentropy(from_logits=True, name="cost")


class FusedAdam(keras.optimizers.Adam):
  """Keras' Adam whose update is TF's fused kernel, one op per variable.

  ResourceApplyAdam is the kernel legacy's AdamOptimizer runs. Keras'
  update_step composes the same update from about a dozen small ops per
  variable, which costs ~0.2 s an epoch on one core, and rounds one number
  otherwise: Keras multiplies by float32(1 - beta) where the kernel (and
  legacy) computes 1 - float32(beta). Slots, step counter, settings and
  checkpoints are Keras' Adam's (its name too, so the slots' paths are).
  """

  def __init__(self, *args, name="adam", **kwargs):
    super().__init__(*args, name=name, **kwargs)
    if self.amsgrad:
      raise ValueError("FusedAdam has no amsgrad: use keras.optimizers.Adam")

  def update_step(self, gradient, variable, learning_rate):
    dtype = variable.dtype
    step = tf.cast(self.iterations + 1, dtype)
    beta1, beta2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
    index = self._get_variable_index(variable)
    tf.raw_ops.ResourceApplyAdam(
        var=_handle(variable), m=_handle(self._momentums[index]),
        v=_handle(self._velocities[index]),
        beta1_power=tf.pow(beta1, step), beta2_power=tf.pow(beta2, step),
        lr=tf.cast(learning_rate, dtype), beta1=beta1, beta2=beta2,
        epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))


def _handle(variable):
  """The resource handle of a Keras or TF variable (a replica's, in an update)."""
  return (variable.value if isinstance(variable, keras.Variable) else variable).handle


def training(optimizer="gd", learning_rate=1.0, beta1=0.9, beta2=0.999,
             epsilon=1e-8) -> keras.optimizers.Optimizer:
  """The optimizer; epsilon is always passed (Keras' 1e-7 is not TF1's 1e-8)."""
  if optimizer == "adam":
    return FusedAdam(learning_rate=learning_rate, beta_1=beta1, beta_2=beta2,
                     epsilon=epsilon)
  return keras.optimizers.SGD(learning_rate=learning_rate)


def evaluation():
  """Fraction of examples whose argmax(logits) is the one-hot label."""
  return keras.metrics.CategoricalAccuracy(name="accuracy")


def plain_model(model: keras.Model) -> keras.Sequential:
  """The model's layers as a plain keras.Sequential of the same name.

  What a .keras file holds: it loads with keras.saving.load_model alone,
  without this project's MLP class (whose only addition is a training-time
  check).
  """
  return keras.Sequential([keras.Input(shape=(hp.IMAGE_PIXELS,), name="X"),
                           *model.layers], name=model.name)


def keras_optimizer(optimizer: keras.optimizers.Optimizer,
                    variables) -> keras.optimizers.Optimizer:
  """`optimizer` as Keras' own class, with its settings and state.

  What a .keras file holds, so that it loads without this project's code.
  Args: the (built) optimizer and the variables it trains.
  """
  if not isinstance(optimizer, FusedAdam):
    return optimizer
  twin = keras.optimizers.Adam.from_config(optimizer.get_config())
  twin.build(variables)
  for mine, theirs in zip(twin.variables, optimizer.variables, strict=True):
    mine.assign(theirs)
  return twin
