"""Exports the trained MLP as a SavedModel, TF1 style: Builder and SignatureDef.

The served graph is a separate inference graph without dropout: the
training graph's keep_prob placeholder has no value to serve with, and it
holds the optimizer too. Its variables take the training graph's names
(hidden1/weights, ...) and values. Name for name with modern/export.py;
the signature's names are common/serving.py's.
"""

from typing import Dict

import numpy as np
import tensorflow as tf

from common import hparams as hp
from common import serving
from legacy import mlp

v1 = tf.compat.v1


def build_serving_graph(hparams: hp.HParams):
  """images -> (probabilities, classes), with no dropout; returns the handles."""
  graph = tf.Graph()
  with graph.as_default():
    images = v1.placeholder(tf.float32, [None, hp.IMAGE_PIXELS],
                            name=serving.INPUT)
    logits = mlp.inference(images, hparams.hidden_units, hparams.activation)
    probabilities = tf.nn.softmax(logits, name=serving.PROBABILITIES)
    classes = tf.argmax(logits, 1, name=serving.CLASSES)  # int64
  return graph, images, probabilities, classes


def export(weights: Dict[str, np.ndarray], hparams: hp.HParams,
           target: serving.ExportTarget) -> None:
  """Writes `weights` (train.model_weights) as a SavedModel at target.path."""
  graph, images, probabilities, classes = build_serving_graph(hparams)
  with graph.as_default(), v1.Session(graph=graph) as sess:
    signature = v1.saved_model.predict_signature_def(
        inputs={serving.INPUT: images},
        outputs={serving.PROBABILITIES: probabilities, serving.CLASSES: classes})
    variables = graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)
    # Each variable initialised straight to its trained value.
    sess.run([v.initializer for v in variables],
             feed_dict={v.initial_value: weights[v.op.name] for v in variables})
    with serving.export_path(target) as path:
      builder = v1.saved_model.Builder(path)
      builder.add_meta_graph_and_variables(
          sess, [serving.TAG], signature_def_map={serving.SIGNATURE: signature},
          strip_default_attrs=True)
      builder.save()
