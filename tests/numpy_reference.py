"""The maths both ports implement, in numpy float64: the reference the
tests check legacy/ and modern/ against (never outputs copied from a run).

params is the MLP as [(weights, biases), ...] in layer order; the last
layer is linear (the logits), the others use `activation`.
"""

import numpy as np


def sigmoid(z):
  return 0.5 * (1.0 + np.tanh(0.5 * z))  # 1 / (1 + e^-z), no overflow


ACTIVATIONS = {"sigmoid": sigmoid, "relu": lambda z: np.maximum(z, 0.0),
               "tanh": np.tanh}
# The derivative of each activation, written in terms of its output a.
DERIVATIVES = {"sigmoid": lambda a: a * (1.0 - a),
               "relu": lambda a: (a > 0).astype(a.dtype),
               "tanh": lambda a: 1.0 - a * a}


def forward(params, images, activation="sigmoid"):
  """[input, hidden outputs..., logits] of the MLP without dropout."""
  layers = [np.asarray(images, np.float64)]
  for i, (weights, biases) in enumerate(params):
    z = layers[-1] @ weights + biases
    layers.append(z if i == len(params) - 1 else ACTIVATIONS[activation](z))
  return layers


def softmax_cross_entropy(logits, labels):
  """Per-example softmax cross-entropy of one-hot `labels`, stable for
  large logits."""
  logits = np.asarray(logits, np.float64)
  top = logits.max(axis=1, keepdims=True)
  log_sum_exp = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
  return log_sum_exp - (labels * logits).sum(axis=1)


def mean_cost(logits, labels):
  """The scripts' cost: the batch mean of the cross-entropy."""
  return softmax_cross_entropy(logits, labels).mean()


def cost_and_grads(params, images, labels, activation="sigmoid"):
  """The mean cost and its gradients [(dW, db), ...] by hand-written backprop."""
  layers = forward(params, images, activation)
  logits = layers[-1]
  cost = mean_cost(logits, labels)
  probs = np.exp(logits - logits.max(axis=1, keepdims=True))
  probs /= probs.sum(axis=1, keepdims=True)
  delta = (probs - labels) / len(images)  # d cost / d logits
  grads = [None] * len(params)
  for i in reversed(range(len(params))):
    grads[i] = (layers[i].T @ delta, delta.sum(axis=0))
    if i > 0:
      delta = (delta @ params[i][0].T) * DERIVATIVES[activation](layers[i])
  return cost, grads


def accuracy(logits, labels):
  """The fraction of rows whose argmax is the one-hot label's."""
  return np.mean(np.argmax(logits, 1) == np.argmax(labels, 1))


class GradientDescent:

  def __init__(self, learning_rate):
    self.learning_rate = learning_rate

  def step(self, params, grads):
    """The params after one step along `grads`."""
    return [(w - self.learning_rate * dw, b - self.learning_rate * db)
            for (w, b), (dw, db) in zip(params, grads)]


class Adam:
  """TF1's AdamOptimizer, which Keras 3's Adam computes too:
  m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
  lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), var -= lr_t m / (sqrt(v) + epsilon)
  (epsilon after the square root, not inside the bias correction)."""

  def __init__(self, learning_rate, beta1, beta2, epsilon):
    self.lr, self.beta1, self.beta2, self.epsilon = (
        learning_rate, beta1, beta2, epsilon)
    self.t = 0
    self.m = self.v = None

  def step(self, params, grads):
    """The params after one step with `grads`; updates the slots."""
    flat_grads = [g for pair in grads for g in pair]
    if self.m is None:
      self.m = [np.zeros_like(g) for g in flat_grads]
      self.v = [np.zeros_like(g) for g in flat_grads]
    self.t += 1
    lr_t = (self.lr * np.sqrt(1 - self.beta2 ** self.t)
            / (1 - self.beta1 ** self.t))
    flat_params = []
    for i, (p, g) in enumerate(zip([p for pair in params for p in pair],
                                   flat_grads)):
      self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
      self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * g * g
      flat_params.append(p - lr_t * self.m[i] / (np.sqrt(self.v[i]) + self.epsilon))
    return list(zip(flat_params[0::2], flat_params[1::2]))


def optimizer(hparams):
  """The reference optimizer for hparams.optimizer ("adam" or "gd")."""
  if hparams.optimizer == "adam":
    return Adam(hparams.learning_rate, hparams.beta1, hparams.beta2,
                hparams.epsilon)
  return GradientDescent(hparams.learning_rate)


def train_steps(params, batches, step_optimizer, activation="sigmoid"):
  """One optimizer step per (images, labels) batch, from `params`.

  Returns [(cost before the step, params after it)] for every step.
  """
  history = []
  for images, labels in batches:
    cost, grads = cost_and_grads(params, images, labels, activation)
    params = step_optimizer.step(params, grads)
    history.append((cost, params))
  return history
