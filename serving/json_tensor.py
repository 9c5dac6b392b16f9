"""TensorFlow Serving's REST JSON, read and written as its server does.

The rules, and the messages, of tensorflow_serving/util/json_tensor.cc:

  parse_predict_request(body, input_dtypes)  - a predict request's JSON:
      (signature_name, format, tensors) in two steps, since the input
      dtypes depend on the signature the request names;
  predict_response(outputs, format)          - the body TF Serving answers;
  error_body(message)                        - its `{"error": ...}` body.

Row format ("instances"): one item per example, a bare value or list when
the signature has one input, else an object keyed by input name; the
answer is `{"predictions": [...]}`, one item per example, each an object
keyed by output name when there are several outputs. Columnar format
("inputs"): a tensor, or an object of tensors keyed by input name; the
answer is `{"outputs": ...}`, keyed the same way. A JSON list's shape is
read from its first elements, then every element must match it.

Bodies are written as TF Serving's rapidjson PrettyWriter writes them,
whitespace included: 4-space indents, each row-format item's arrays on one
line, a float32 in the fewest of 6 or 9 significant digits that give it
back (`0.25`, `0.0795036`), whole floats with `.0`, int64 as integers.
Where the server's order is a hash map's (several outputs), names are
sorted. No string inputs or outputs (base64 `{"b64": ...}` values).
"""

import decimal
import json
import math
from typing import Any, Dict, List, Tuple

import numpy as np

ROW = "row"            # "instances" in, "predictions" out
COLUMNAR = "columnar"  # "inputs" in, "outputs" out

_INDENT = "    "
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class RequestError(ValueError):
  """A request TF Serving rejects; `code` is its status code (INVALID_ARGUMENT)."""

  def __init__(self, message: str, code: int = 3):
    super().__init__(message)
    self.code = code


def _nested(message: str) -> str:
  """An inner error as the server's Status::ToString() quotes it."""
  return f"INVALID_ARGUMENT: {message}"


# ---------------------------------------------------------------- writing


class _PrettyWriter:
  """rapidjson's PrettyWriter, step by step, so bodies match byte for byte.

  `single_line_arrays` is its kFormatSingleLineArray option: array elements
  are then joined by ", " instead of each taking a new, indented line.
  """

  def __init__(self):
    self._out: List[str] = []
    self._levels: List[List[Any]] = []  # [in_array, values so far] per container
    self.single_line_arrays = False

  def _prefix(self) -> None:
    if not self._levels:
      return
    level = self._levels[-1]
    in_array, count = level
    if in_array:
      if count:
        self._out.append(", " if self.single_line_arrays else ",")
      if not self.single_line_arrays:
        self._out.append("\n" + _INDENT * len(self._levels))
    else:  # an object: names and values alternate
      if count:
        self._out.append(",\n" if count % 2 == 0 else ": ")
      else:
        self._out.append("\n")
      if count % 2 == 0:
        self._out.append(_INDENT * len(self._levels))
    level[1] += 1

  def start(self, bracket: str) -> None:
    self._prefix()
    self._out.append(bracket)
    self._levels.append([bracket == "[", 0])

  def end(self) -> None:
    in_array, count = self._levels.pop()
    if count and not (in_array and self.single_line_arrays):
      self._out.append("\n" + _INDENT * len(self._levels))
    self._out.append("]" if in_array else "}")

  def key(self, name: str) -> None:
    self.raw(json.dumps(name, ensure_ascii=False))

  def raw(self, text: str) -> None:
    self._prefix()
    self._out.append(text)

  def text(self) -> str:
    return "".join(self._out)


def _decimal(value: np.floating) -> str:
  """A float as TF Serving's WriteDecimal writes it.

  Six significant digits (absl::StrCat) when they read back as the same
  float, else all it takes (9 for float32, 17 for float64); `.0` after a
  whole number, so that no list mixes ints and floats.
  """
  if math.isnan(value):
    return "NaN"
  if math.isinf(value):
    return "-Infinity" if value < 0 else "Infinity"
  text = "%.6g" % value
  if type(value)(text) != value:
    text = "%.*g" % (9 if value.dtype == np.float32 else 17, value)
  if "." not in text and "e" not in text:
    text += ".0"
  return text


def _shortest(value: float) -> str:
  """A request's float as rapidjson's Writer echoes it: shortest digits,
  plain from 1e-6 to 1e21, else `1.5e-7` (no exponent padding)."""
  if value == 0:
    return "-0.0" if math.copysign(1, value) < 0 else "0.0"
  if not math.isfinite(value):
    return _decimal(np.float64(value))
  sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
  digits = "".join(map(str, digits))
  point = len(digits) + exponent  # where the decimal point goes
  if 0 <= exponent and point <= 21:
    text = digits + "0" * exponent + ".0"
  elif 0 < point <= 21:
    text = digits[:point] + "." + digits[point:]
  elif -6 < point <= 0:
    text = "0." + "0" * -point + digits
  else:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    text = f"{mantissa}e{point - 1}"
  return ("-" if sign else "") + text


def _write_value(writer: _PrettyWriter, value: Any) -> None:
  if isinstance(value, dict):
    writer.start("{")
    for name, item in value.items():
      writer.key(name)
      _write_value(writer, item)
    writer.end()
  elif isinstance(value, list):
    writer.start("[")
    for item in value:
      _write_value(writer, item)
    writer.end()
  elif isinstance(value, float):
    writer.raw(_shortest(value))
  else:  # str, bool, None, int
    writer.raw(json.dumps(value, ensure_ascii=False))


def value_text(value: Any) -> str:
  """A request's JSON value as TF Serving quotes it in errors (JsonValueToString)."""
  if isinstance(value, float):  # a lone number is written as a float32 if it fits
    fits = not math.isfinite(value) or abs(value) <= _FLOAT32_MAX
    return _decimal(np.float32(value) if fits else np.float64(value))
  writer = _PrettyWriter()
  _write_value(writer, value)
  return writer.text()


# ---------------------------------------------------------------- parsing

# rapidjson's words (error/en.h) for what Python's json module reports.
_PARSE_ERRORS = {
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes":
        "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Extra data": "The document root must not be followed by other values.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
    "Invalid control character at": "Invalid encoding in string.",
}


def _innermost_bracket(text: str, end: int) -> str:
  """The innermost `[` or `{` still open at text[end] (outside strings)."""
  stack, in_string, escaped = ["["], False, False
  for char in text[:end]:
    if escaped:
      escaped = False
    elif in_string:
      escaped = char == "\\"
      in_string = char != '"'
    elif char == '"':
      in_string = True
    elif char in "[{":
      stack.append(char)
    elif char in "]}":
      stack.pop()
  return stack[-1]


def _parse_error(error: json.JSONDecodeError) -> RequestError:
  if error.msg == "Expecting ',' delimiter":
    if _innermost_bracket(error.doc, error.pos) == "{":
      message = "Missing a comma or '}' after an object member."
    else:
      message = "Missing a comma or ']' after an array element."
  else:
    message = _PARSE_ERRORS.get(error.msg, error.msg)
  # rapidjson notices an unclosed string at the end, Python where it opens.
  offset = len(error.doc) if message.startswith("Missing a closing") else error.pos
  return RequestError(f"JSON Parse error: {message} at offset: {offset}")


def _parse_document(body: bytes) -> Dict[str, Any]:
  """The request as a JSON object (ParseJson); NaN and Infinity allowed."""
  text = body.decode("utf-8", errors="replace")
  if not body:
    raise RequestError("JSON Parse error: The document is empty")
  if not text.strip():
    raise RequestError(
        f"JSON Parse error: The document is empty. at offset: {len(text)}")
  try:
    document = json.loads(text)
  except json.JSONDecodeError as e:
    raise _parse_error(e) from None
  if not isinstance(document, dict):
    raise RequestError(f"JSON Value: {value_text(document)} Is not object")
  return document


def parse_signature_name(body: bytes) -> Tuple[Dict[str, Any], str]:
  """The parsed request, and the signature it names ("" for the default)."""
  document = _parse_document(body)
  name = document.get("signature_name", "")
  if not isinstance(name, str):
    raise RequestError(
        f"JSON Value: {value_text(document)} not formatted correctly. "
        "'signature_name' key must be a string value.")
  return document, name


# ---------------------------------------------------------------- tensors


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(bits: int):
  return lambda v: (isinstance(v, int) and not isinstance(v, bool)
                    and -2 ** (bits - 1) <= v < 2 ** (bits - 1))


def _lossless(mantissa_bits: int, largest: float):
  """A number the float type holds: an int up to 2**bits - 1, a float in range."""
  def check(value):
    if isinstance(value, int):
      return abs(value) <= 2 ** mantissa_bits - 1
    return not math.isfinite(value) or abs(value) <= largest
  return check


# dtype: (TF's name for it in messages, value accepted?, lossless?)
_TYPES = {
    np.dtype(np.float32): ("float", _is_number, _lossless(24, _FLOAT32_MAX)),
    np.dtype(np.float64): ("double", _is_number, _lossless(53, math.inf)),
    np.dtype(np.int32): ("int32", _is_int(32), None),
    np.dtype(np.int64): ("int64", _is_int(64), None),
    np.dtype(np.bool_): ("bool", lambda v: isinstance(v, bool), None),
}


# The dtypes read and written here (TF Serving handles strings and more).
DTYPES = tuple(_TYPES)


def _json_type(value: Any) -> str:
  if value is None:
    return "Null"
  if isinstance(value, bool):
    return str(value)  # True, False
  return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _scalar(value: Any, dtype: np.dtype) -> Any:
  """One JSON value of a tensor, checked as AddValueToTensor checks it."""
  name, accepted, lossless = _TYPES[dtype]
  if not accepted(value):
    raise RequestError(f"JSON Value: {value_text(value)} Type: "
                       f"{_json_type(value)} is not of expected type: {name}")
  if lossless and not lossless(value):
    raise RequestError(f"Cannot convert JSON value: {value_text(value)} to "
                       f"{name} without loss of precision.")
  return value


def _dense_shape(value: Any) -> List[int]:
  """A nested list's shape, read from its first elements (GetDenseTensorShape)."""
  shape = []
  while isinstance(value, list):
    shape.append(len(value))
    if not value:
      break
    value = value[0]
  return shape


def _fill(value: Any, level: int, shape: List[int], dtype: np.dtype,
          out: List[Any]) -> None:
  """Appends `value`'s scalars to `out`, checking it has `shape` (FillTensorProto)."""
  rank = len(shape)
  if not isinstance(value, list):
    if level != rank:
      raise RequestError(
          f"JSON Value: {value_text(value)} found at incorrect level: "
          f"{level + 1} in the JSON DOM. Expected at level: {rank}")
    out.append(_scalar(value, dtype))
    return
  if level >= rank:
    raise RequestError(
        f"Encountered list at unexpected level: {level} expected < {rank}")
  if len(value) != shape[level]:
    raise RequestError(
        f"Encountered list at unexpected size: {len(value)} at level: {level} "
        f"expected size: {shape[level]}")
  for item in value:
    _fill(item, level + 1, shape, dtype, out)


def _tensor(value: Any, dtype: np.dtype) -> np.ndarray:
  shape = _dense_shape(value)
  scalars: List[Any] = []
  _fill(value, 0, shape, dtype, scalars)
  return np.array(scalars, dtype=dtype).reshape(shape)


def _shape_text(shape) -> str:
  return "[" + ",".join(map(str, shape)) + "]"


class _Rows:
  """The examples of a row-format request, one tensor each per input."""

  def __init__(self, dtypes: Dict[str, np.dtype]):
    self._dtypes = dtypes
    self._rows: Dict[str, List[np.ndarray]] = {}

  def add(self, name: str, value: Any) -> None:
    """One example's value for input `name` (AddInstanceItem)."""
    if name not in self._dtypes:
      raise RequestError(f"JSON object: does not have named input: {name}")
    tensor = _tensor(value, self._dtypes[name])
    rows = self._rows.setdefault(name, [])
    if rows and rows[0].size != tensor.size:
      raise RequestError(f"Expecting tensor size: {rows[0].size} but got: "
                         f"{tensor.size}")
    if rows and rows[0].shape != tensor.shape:
      raise RequestError(f"Expecting shape {_shape_text(rows[0].shape)} but "
                         f"got: {_shape_text(tensor.shape)}")
    rows.append(tensor)

  def tensors(self) -> Dict[str, np.ndarray]:
    return {name: np.stack(rows) for name, rows in self._rows.items()}


def _from_instances(instances: List[Any],
                    dtypes: Dict[str, np.dtype]) -> Dict[str, np.ndarray]:
  """The tensors of an "instances" list (FillTensorMapFromInstancesList)."""
  objects = isinstance(instances[0], dict)
  if not objects and len(dtypes) > 1:
    raise RequestError(
        "instances is a plain list, but expecting list of objects as multiple "
        "input tensors required as per tensorinfo_map")
  rows = _Rows(dtypes)
  for index, item in enumerate(instances):
    where = f"Failed to process element: {index}"
    if objects != isinstance(item, dict):
      raise RequestError(
          f"Expecting object but got list at item {index} of input list" if objects
          else f"Expecting value/list but got object at item {index} of input list")
    if not objects:
      try:
        rows.add(next(iter(dtypes)), item)
      except RequestError as e:
        raise RequestError(f"{where} of 'instances' list. Error: "
                           f"{_nested(e)}") from None
      continue
    for name, value in item.items():
      try:
        rows.add(name, value)
      except RequestError as e:
        raise RequestError(f"{where} key: {name} of 'instances' list. Error: "
                           f"{_nested(e)}") from None
    if set(item) != set(dtypes):
      raise RequestError(
          f"{where} of 'instances' list. JSON object: {value_text(item)} must "
          f"only have keys: {','.join(sorted(dtypes))}")
  return rows.tensors()


def _from_inputs(value: Any, dtypes: Dict[str, np.dtype]) -> Dict[str, np.ndarray]:
  """The tensors of an "inputs" value (FillTensorMapFromInputsMap)."""
  if not isinstance(value, dict):
    if len(dtypes) > 1:
      raise RequestError(
          "inputs is a plain value/list, but expecting an object as multiple "
          "input tensors required as per tensorinfo_map")
    [(name, dtype)] = dtypes.items()
    return {name: _tensor(value, dtype)}
  tensors = {}
  for name, dtype in sorted(dtypes.items()):  # other keys are not read
    if name not in value:
      raise RequestError(f"Missing named input: {name} in 'inputs' object.")
    tensors[name] = _tensor(value[name], dtype)
  return tensors


def parse_tensors(document: Dict[str, Any], dtypes: Dict[str, np.dtype]
                  ) -> Tuple[str, Dict[str, np.ndarray]]:
  """The request's format (ROW or COLUMNAR) and its tensor for each input.

  Args:
    document: the request, from parse_signature_name.
    dtypes: the signature's inputs, {name: numpy dtype}, each in DTYPES.
  Returns:
    (format, {input name: np.ndarray}), a row-format request's tensors of
    shape [number of instances, ...].
  """
  rows, columns = "instances" in document, "inputs" in document
  if rows and columns:
    raise RequestError(
        f"JSON Value: {value_text(document)} Not formatted correctly expecting "
        "only one of 'inputs' or 'instances' keys to exist ")
  if columns:
    return COLUMNAR, _from_inputs(document["inputs"], dtypes)
  if not rows:
    raise RequestError("Missing 'inputs' or 'instances' key")
  instances = document["instances"]
  if not isinstance(instances, list):
    raise RequestError(f"JSON Value: {value_text(document)} Excepting "
                       "'instances' to be an list/array")  # sic
  if not instances:
    raise RequestError(
        f"JSON Value: {value_text(document)} No values in 'instances' array")
  return ROW, _from_instances(instances, dtypes)


# ---------------------------------------------------------------- answers


def _write_tensor(writer: _PrettyWriter, tensor: np.ndarray) -> None:
  if tensor.ndim:
    writer.start("[")
    for item in tensor:
      _write_tensor(writer, item)
    writer.end()
  elif tensor.dtype.kind == "f":
    writer.raw(_decimal(tensor[()]))
  else:  # int, bool
    writer.raw(json.dumps(tensor.item()))


def _batch_size(outputs: Dict[str, np.ndarray]) -> int:
  """The examples in a row-format answer; every output must have as many."""
  batch = 0
  for name, tensor in sorted(outputs.items()):
    if not tensor.ndim:
      raise RequestError(f"Tensor name: {name} has no shape information ")
    if tensor.shape[0] < 1:
      raise RequestError(
          f"Tensor name: {name} has invalid batch size: {tensor.shape[0]}")
    if batch and tensor.shape[0] != batch:
      raise RequestError(f"Tensor name: {name} has inconsistent batch size: "
                         f"{tensor.shape[0]} expecting: {batch}")
    batch = tensor.shape[0]
  return batch


def predict_response(outputs: Dict[str, np.ndarray], request_format: str) -> str:
  """The body TF Serving answers a predict request with (MakeJsonFromTensors).

  Args:
    outputs: the signature's outputs, {name: np.ndarray}, dtypes in DTYPES.
    request_format: ROW or COLUMNAR, as the request was.
  Returns:
    `{"predictions": [...]}` (ROW) or `{"outputs": ...}` (COLUMNAR), each
    output under its name when there are several, without a final newline.
  """
  names = sorted(outputs)
  several = len(names) > 1
  writer = _PrettyWriter()
  writer.start("{")
  if request_format == ROW:
    batch = _batch_size(outputs)
    writer.key("predictions")
    writer.start("[")
    for row in range(batch):
      if several:
        writer.start("{")
      writer.single_line_arrays = True  # set and reset per item, as the server does
      for name in names:
        if several:
          writer.key(name)
        _write_tensor(writer, outputs[name][row])
      writer.single_line_arrays = False
      if several:
        writer.end()
    writer.end()
  else:
    writer.key("outputs")
    if several:
      writer.start("{")
    for name in names:
      if several:
        writer.key(name)
      _write_tensor(writer, outputs[name])
    if several:
      writer.end()
  writer.end()
  return writer.text()


def error_body(message: str) -> str:
  """TF Serving's error body (MakeJsonFromStatus): `{"error": message}`."""
  writer = _PrettyWriter()
  writer.start("{")
  writer.key("error")
  writer.raw(json.dumps(message, ensure_ascii=False))
  writer.end()
  return writer.text()
