"""A TensorFlow Serving REST predict call, answered offline.

  Servable(path)             - a SavedModel as the server holds it: the
                               MetaGraph tagged `serve`, its SignatureDefs;
  answer(servable, body)     - what `POST /v1/models/NAME:predict` with
                               `body` returns: (HTTP status, JSON body).

The server reads the request against the signature's inputs
(serving/json_tensor.py), runs the signature's tensors in a TF1 Session,
and writes every output back. So does this, in the same order, so that a
request it answers is one the server answers the same way, and one it
rejects gets the server's error body. A tensor of the wrong shape is not
refused beforehand: the server feeds it and the model's first op fails
(`Matrix size-incompatible: In[0]: [1,783], In[1]: [784,256]`); node
names in such messages depend on how TensorFlow optimized the graph.
"""

import re
from typing import Dict, Tuple

import numpy as np

from common import errors
from common import serving
from serving import json_tensor

# TF Serving's HTTP status for each error code (http_server.cc).
HTTP_STATUS = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429,
               9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500,
               16: 401}

# What Python's Session.run puts before the runtime's message.
_SESSION_PREFIX = re.compile(
    r"^Graph execution error:\n\n(?:Detected at node .*?\nNode: '[^'\n]*'\n)*",
    re.DOTALL)


class Servable:
  """The SavedModel at `path`, as TensorFlow Serving loads it."""

  def __init__(self, path: str):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.path = path
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
      self.signatures = dict(_load(session, path).signature_def)

  def input_dtypes(self, signature: str) -> Dict[str, np.dtype]:
    """The signature's inputs' dtypes, {name: numpy dtype}.

    Raises:
      errors.UserError: an input or output of a dtype json_tensor does not
        read or write (e.g. a string).
    """
    definition = self.signatures[signature]
    for what, infos in (("input", definition.inputs),
                        ("output", definition.outputs)):
      for name, info in sorted(infos.items()):
        _check_dtype(info, f"the {signature} {what} {name}")
    return {name: _numpy_dtype(info) for name, info in definition.inputs.items()}

  def run(self, signature: str,
          tensors: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The signature's outputs for `tensors`, fed by name as the server feeds them.

    Raises:
      json_tensor.RequestError: the model failed on them (e.g. a wrong shape).
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    definition = self.signatures[signature]
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
      # The server checks no shape before running. Python's Session.run
      # would refuse a feed of the wrong shape, so the inputs become
      # placeholders of any shape, mapped over the signature's own.
      feeds = {name: tf.compat.v1.placeholder(tensor.dtype, shape=None)
               for name, tensor in tensors.items()}
      _load(session, self.path, input_map={
          definition.inputs[name].name: feed for name, feed in feeds.items()})
      fetches = {name: info.name for name, info in definition.outputs.items()}
      try:
        return session.run(fetches, {feeds[name]: tensor
                                     for name, tensor in tensors.items()})
      except tf.errors.OpError as e:
        raise json_tensor.RequestError(_SESSION_PREFIX.sub("", e.message),
                                       e.error_code) from None


def _load(session, path: str, **kwargs):
  """tf.compat.v1.saved_model.loader.load, its failures one UserError."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from google.protobuf import message  # pylint: disable=g-import-not-at-top
  try:
    return tf.compat.v1.saved_model.loader.load(session, [serving.TAG], path,
                                                **kwargs)
  except (OSError, RuntimeError, ValueError, message.DecodeError,
          tf.errors.OpError) as e:
    raise errors.UserError(f"cannot load the SavedModel {path}: "
                           f"{errors.first_line(e)}") from None


def answer(servable: Servable, body: bytes) -> Tuple[int, str]:
  """What TF Serving answers a predict request for `servable`.

  Args:
    servable: the model, as the server holds it.
    body: the request's bytes, JSON in the row or columnar format.
  Returns:
    (HTTP status, JSON body): 200 and `{"predictions": ...}` or
    `{"outputs": ...}`, else e.g. 400 and `{"error": "..."}`.
  Raises:
    errors.UserError: the signature has inputs or outputs of a dtype
      json_tensor does not read or write (strings, ...), or the SavedModel
      does not load.
  """
  try:
    document, name = json_tensor.parse_signature_name(body)
    signature = name or serving.SIGNATURE
    if signature not in servable.signatures:
      raise json_tensor.RequestError(
          f'Serving signature name: "{signature}" not found in signature def')
    dtypes = servable.input_dtypes(signature)
    if not dtypes:
      raise json_tensor.RequestError(
          f"Failed to get input map for signature: {name or 'DEFAULT'}")
    request_format, tensors = json_tensor.parse_tensors(document, dtypes)
    outputs = servable.run(signature, tensors)
    return 200, json_tensor.predict_response(outputs, request_format)
  except json_tensor.RequestError as e:
    return HTTP_STATUS.get(e.code, 500), json_tensor.error_body(str(e))


def _tf_dtype(info):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.dtypes.as_dtype(info.dtype)


def _numpy_dtype(info) -> np.dtype:
  return np.dtype(_tf_dtype(info).as_numpy_dtype)


def _check_dtype(info, what: str) -> None:
  if _numpy_dtype(info) not in json_tensor.DTYPES:
    raise errors.UserError(
        f"--request: {what} is {_tf_dtype(info).name}; requests are checked "
        f"for {', '.join(d.name for d in json_tensor.DTYPES)} tensors only")
