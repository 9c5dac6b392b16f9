"""Exports the trained MLP as a SavedModel, TF2 style: ExportArchive.

model.export() would name the output `output_0` and the input after the
keras.Input ("X"); an ExportArchive with an explicit tf.function signature
serves common/serving.py's names. Dropout is off: the model is called with
training=False. Name for name with legacy/export.py.
"""

import keras
import tensorflow as tf

from common import hparams as hp
from common import serving


def serving_function(model: keras.Model) -> tf.types.experimental.PolymorphicFunction:
  """images -> {probabilities, classes}, traced for float32 [None, 784]."""
  @tf.function(input_signature=[
      tf.TensorSpec([None, hp.IMAGE_PIXELS], tf.float32, name=serving.INPUT)])
  def serve(images):
    logits = model(images, training=False)
    return {serving.PROBABILITIES: tf.nn.softmax(logits),
            serving.CLASSES: tf.argmax(logits, 1)}  # int64
  return serve


def export(model: keras.Model, target: serving.ExportTarget) -> None:
  """Writes `model` as a SavedModel at target.path."""
  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint(serving.SIGNATURE, serving_function(model))
  with serving.export_path(target) as path:
    archive.write_out(path, verbose=False)
