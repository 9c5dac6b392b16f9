"""Builds the homework MLP graph, TF 1.x style (after TF1's tutorial mnist.py).

784 -> 256 -> 128 -> 256 -> 10 with sigmoid hidden layers, written with raw
ops as the original scripts were: Keras 3 breaks tf.compat.v1.layers.

  inference()  - the forward pass up to the logits, with keep_prob dropout.
  loss()       - mean softmax cross-entropy on the logits.
  training()   - the optimizer's train op.
  evaluation() - accuracy: how often argmax(logits) is the label.
"""

import tensorflow as tf

from common import hparams as hp

v1 = tf.compat.v1

ACTIVATIONS = {"sigmoid": tf.nn.sigmoid, "relu": tf.nn.relu, "tanh": tf.nn.tanh}


def initial_value(spec: hp.InitSpec, shape):
  """The initial value tensor the original scripts would have written."""
  if spec.kind == "uniform":
    return v1.random_uniform(shape, -spec.scale, spec.scale)
  if spec.kind == "normal":
    return v1.random_normal(shape, stddev=spec.scale)
  if spec.kind == "xavier":  # tf.contrib.layers.xavier_initializer()'s default
    return v1.glorot_uniform_initializer()(shape)
  return tf.zeros(shape)


def inference(images, hidden_units, activation="sigmoid", init="uniform:1.0",
              bias_init="zeros", keep_prob=None, dropout_layers="all"):
  """Builds the MLP up to the logits.

  Args:
    images: float32 placeholder [batch, 784].
    hidden_units: sizes of the hidden layers, e.g. (256, 128, 256).
    activation: "sigmoid", "relu" or "tanh" for the hidden layers.
    init, bias_init: initializer specs ("uniform:1.0", "normal:1.0", ...).
    keep_prob: scalar keep-probability tensor, or None to build no dropout.
    dropout_layers: "hidden" (after each hidden layer), "input_hidden" (the
      input image too) or "all" (the logits too).

  Returns:
    logits [batch, 10].
  """
  weights_spec = hp.parse_init(init, hp.WEIGHT_INITS)
  bias_spec = hp.parse_init(bias_init, hp.BIAS_INITS)
  sizes = hp.layer_sizes(hidden_units)
  names = hp.layer_names(len(hidden_units))
  layer = images
  if keep_prob is not None and dropout_layers == "input_hidden":
    with v1.name_scope("input"):
      layer = v1.nn.dropout(layer, keep_prob=keep_prob)
  for name, fan_in, fan_out in zip(names, sizes[:-1], sizes[1:]):
    is_logits = name == names[-1]
    with v1.name_scope(name):
      weights = tf.Variable(initial_value(weights_spec, [fan_in, fan_out]),
                            name="weights")
      biases = tf.Variable(initial_value(bias_spec, [fan_out]), name="biases")
      layer = tf.matmul(layer, weights) + biases
      if not is_logits:
        layer = ACTIVATIONS[activation](layer)
      if keep_prob is not None and (not is_logits or dropout_layers == "all"):
        layer = v1.nn.dropout(layer, keep_prob=keep_prob)
  return layer


def loss(logits, labels):
  """Mean softmax cross-entropy; `labels` are one-hot float32 [batch, 10]."""
  return tf.reduce_mean(
      v1.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=logits),
      name="cost")


def make_optimizer(optimizer="gd", learning_rate=1.0, beta1=0.9, beta2=0.999,
                   epsilon=1e-8) -> v1.train.Optimizer:
  """The TF1 optimizer `optimizer` names ("gd" or "adam")."""
  if optimizer == "adam":
    return v1.train.AdamOptimizer(learning_rate=learning_rate, beta1=beta1,
                                  beta2=beta2, epsilon=epsilon)
  return v1.train.GradientDescentOptimizer(learning_rate=learning_rate)


def training(cost, optimizer="gd", learning_rate=1.0, beta1=0.9, beta2=0.999,
             epsilon=1e-8):
  """The op that takes one optimizer step on `cost` (and counts it)."""
  opt = make_optimizer(optimizer, learning_rate, beta1, beta2, epsilon)
  global_step = v1.train.get_or_create_global_step()
  return opt.minimize(cost, global_step=global_step)


def evaluation(logits, labels):
  """Fraction of examples whose argmax(logits) is the one-hot label."""
  correct = tf.equal(tf.argmax(logits, 1), tf.argmax(labels, 1))
  return tf.reduce_mean(tf.cast(correct, tf.float32), name="accuracy")
