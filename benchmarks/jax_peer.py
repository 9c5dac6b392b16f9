"""The peer issue 8 compares the ports with: the same MLP in JAX, one jitted
epoch (lax.scan over its steps) per call.

Not part of the project: JAX is not a dependency. `make bench` runs this
with the Python given as --jax_python (a virtual environment with jax and
numpy), so that the peer is timed on the same machine, in the same run, as
the ports. It prints the same lines the ports print, and writes its phase
times where $MNIST_PORT_TIMINGS says, as common/cli.py does.

Same maths as the ports: weights U(-1, 1), zero biases, sigmoid hidden
layers, mean softmax cross-entropy, batches of 100 in a fresh random order
each epoch; hw04 plain gradient descent at 1.0, hw05 dropout (keep 0.7,
after all four layers) and Adam(0.9, beta1 0.6, beta2 0.8, epsilon 0.1)
with TF1's update (epsilon outside the square root).

  python benchmarks/jax_peer.py hw05 [--seed 1]
"""

import argparse
import functools
import json
import os
import sys
import time

T0 = time.perf_counter()
import jax  # noqa: E402  pylint: disable=g-import-not-at-top
import jax.numpy as jnp  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402  pylint: disable=g-import-not-at-top

# JAX's default generator, threefry, is a hash computed in ordinary
# arithmetic: on a CPU hw05's four dropout masks then took about as long as
# the rest of the step. The RngBitGenerator-based one is what JAX suggests
# where speed matters.
jax.config.update("jax_default_prng_impl", "unsafe_rbg")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import console  # noqa: E402  pylint: disable=g-import-not-at-top
from common import hparams as hp  # noqa: E402  pylint: disable=g-import-not-at-top
from common import input_data  # noqa: E402  pylint: disable=g-import-not-at-top


def init_params(key, hparams):
  sizes = hp.layer_sizes(hparams.hidden_units)
  keys = jax.random.split(key, len(sizes) - 1)
  return [(jax.random.uniform(k, (n, m), jnp.float32, -1.0, 1.0),
           jnp.zeros((m,), jnp.float32))
          for k, n, m in zip(keys, sizes[:-1], sizes[1:])]


def forward(params, images, key, keep_prob):
  layer = images
  keys = jax.random.split(key, len(params))
  for i, ((weights, biases), k) in enumerate(zip(params, keys)):
    layer = layer @ weights + biases
    if i < len(params) - 1:
      layer = jax.nn.sigmoid(layer)
    if keep_prob < 1:  # after all four layers, logits included
      keep = jax.random.bernoulli(k, keep_prob, layer.shape)
      layer = jnp.where(keep, layer / keep_prob, 0.0)
  return layer


def cost(params, images, labels, key, keep_prob):
  logits = forward(params, images, key, keep_prob)
  return -jnp.mean(jnp.sum(labels * jax.nn.log_softmax(logits), axis=1))


def make_epoch(hparams):
  """One epoch as one jitted call: (params, opt_state, key, batches) -> ..."""
  adam = hparams.optimizer == "adam"
  b1, b2, eps, lr = hparams.beta1, hparams.beta2, hparams.epsilon, hparams.learning_rate

  def step(carry, batch):
    params, opt_state, key = carry
    key, sub = jax.random.split(key)
    images, labels = batch
    c, grads = jax.value_and_grad(cost)(params, images, labels, sub,
                                        hparams.keep_prob)
    if adam:
      m, v, t = opt_state
      t = t + 1
      m = jax.tree.map(lambda m, g: m + (g - m) * (1 - b1), m, grads)
      v = jax.tree.map(lambda v, g: v + (g * g - v) * (1 - b2), v, grads)
      lr_t = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
      params = jax.tree.map(lambda p, m, v: p - lr_t * m / (jnp.sqrt(v) + eps),
                            params, m, v)
      opt_state = (m, v, t)
    else:
      params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
    return (params, opt_state, key), c

  # The state going in is dead once the epoch returns: its buffers are
  # donated, so the update writes in place instead of allocating anew.
  @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
  def epoch(params, opt_state, key, images, labels, order):
    # Each step gathers its own batch: gathering the whole epoch first
    # would copy the training set once an epoch.
    def step_on(carry, batch):
      return step(carry, (images[batch], labels[batch]))
    (params, opt_state, key), costs = jax.lax.scan(
        step_on, (params, opt_state, key), order)
    return params, opt_state, key, jnp.mean(costs)

  return epoch


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("script", choices=sorted(hp.SCRIPTS))
  parser.add_argument("--seed", type=int, default=1)
  args = parser.parse_args(argv)
  hparams = hp.SCRIPTS[args.script]
  imported = time.perf_counter()
  data = input_data.read_data_sets(None, one_hot=True, seed=args.seed)
  train, test = data.train, data.test
  images, labels = jnp.asarray(train.images), jnp.asarray(train.labels)
  loaded = time.perf_counter()

  key = jax.random.PRNGKey(args.seed)
  key, init_key = jax.random.split(key)
  params = init_params(init_key, hparams)
  zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
  # Two buffers, not one twice: each is donated.
  opt_state = (zeros(), zeros(), 0.0) if hparams.optimizer == "adam" else ()
  epoch_fn = make_epoch(hparams)
  steps = train.num_examples // hparams.batch_size
  rng = np.random.default_rng(args.seed)
  for epoch in range(1, hparams.training_epochs + 1):
    order = rng.permutation(train.num_examples)[:steps * hparams.batch_size]
    order = order.reshape(steps, hparams.batch_size)
    params, opt_state, key, avg_cost = epoch_fn(params, opt_state, key,
                                                images, labels, order)
    print(console.epoch_line(epoch, float(avg_cost)), flush=True)
  trained = time.perf_counter()
  logits = np.asarray(forward(params, jnp.asarray(test.images), key, 1.0))
  accuracy = np.mean(np.argmax(logits, 1) == np.argmax(test.labels, 1))
  print(console.accuracy_line(accuracy), flush=True)
  if os.environ.get("MNIST_PORT_TIMINGS"):
    with open(os.environ["MNIST_PORT_TIMINGS"], "w") as f:
      json.dump({"import_s": imported - T0, "data_s": loaded - imported,
                 "train_s": trained - loaded,
                 "evaluate_s": time.perf_counter() - trained}, f)


if __name__ == "__main__":
  main()
