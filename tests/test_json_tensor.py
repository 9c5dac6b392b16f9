"""serving/json_tensor.py reads and writes TensorFlow Serving's REST JSON as
the server does (tensorflow_serving/util/json_tensor.cc): the documented
row and columnar rules, the server's error messages, its number format and
its rapidjson PrettyWriter layout. No model here: test_serving.py sends
the requests to real exports.
"""

import json

import numpy as np
import pytest

from serving import json_tensor
from serving.json_tensor import COLUMNAR, ROW, RequestError

F32 = np.dtype(np.float32)
IMAGES = {"images": F32}


def parse(request, dtypes=None):
  document, name = json_tensor.parse_signature_name(json.dumps(request).encode())
  request_format, tensors = json_tensor.parse_tensors(document, dtypes or IMAGES)
  return name, request_format, tensors


def rejection(body, dtypes=None):
  """The server's error message for request `body` (bytes or a JSON value)."""
  if not isinstance(body, bytes):
    body = json.dumps(body).encode()
  with pytest.raises(RequestError) as caught:
    document, _ = json_tensor.parse_signature_name(body)
    json_tensor.parse_tensors(document, dtypes or IMAGES)
  assert caught.value.code == 3  # INVALID_ARGUMENT: HTTP 400
  return str(caught.value)


# ---------------------------------------------------------------- requests


def test_one_named_input_takes_bare_rows_or_objects_or_columns():
  rows = [[0.0, 0.5], [1.0, 0.25]]
  expected = np.array(rows, np.float32)
  for request, request_format in (
      ({"instances": rows}, ROW),
      ({"instances": [{"images": row} for row in rows]}, ROW),
      ({"inputs": rows}, COLUMNAR),
      ({"inputs": {"images": rows}}, COLUMNAR)):
    name, got_format, tensors = parse(request)
    assert (name, got_format) == ("", request_format)
    assert tensors["images"].dtype == np.float32
    np.testing.assert_array_equal(tensors["images"], expected)


def test_rows_stack_into_a_batch_of_any_inner_shape():
  _, _, tensors = parse({"signature_name": "other",
                         "instances": [[[1, 2]], [[3, 4]]]})
  assert tensors["images"].shape == (2, 1, 2)
  _, _, tensors = parse({"instances": [7, 8, 9]})  # scalars: a [3] tensor
  assert tensors["images"].shape == (3,)


def test_several_inputs_need_objects_in_rows_and_names_in_columns():
  dtypes = {"a": F32, "b": np.dtype(np.int64)}
  _, _, tensors = parse({"instances": [{"a": 1.5, "b": 2}, {"a": 3, "b": 4}]},
                        dtypes)
  np.testing.assert_array_equal(tensors["a"], [1.5, 3])
  assert tensors["b"].dtype == np.int64
  _, _, tensors = parse({"inputs": {"a": [1], "b": [[2, 3]], "unread": 0}}, dtypes)
  assert tensors["b"].shape == (1, 2)  # columns need not share a batch size
  assert rejection({"instances": [[1], [2]]}, dtypes) == (
      "instances is a plain list, but expecting list of objects as multiple "
      "input tensors required as per tensorinfo_map")
  assert rejection({"inputs": [1]}, dtypes).startswith(
      "inputs is a plain value/list, but expecting an object")
  assert rejection({"inputs": {"a": [1]}}, dtypes) == (
      "Missing named input: b in 'inputs' object.")
  assert rejection({"instances": [{"a": 1}]}, dtypes) == (
      "Failed to process element: 0 of 'instances' list. JSON object: "
      '{\n    "a": 1\n} must only have keys: a,b')


@pytest.mark.parametrize("request_body, message", [
    ({}, "Missing 'inputs' or 'instances' key"),
    ({"instances": [[1]], "inputs": [[1]]},
     "JSON Value: {\n    \"instances\": [\n        [\n            1\n        ]\n"
     "    ],\n    \"inputs\": [\n        [\n            1\n        ]\n    ]\n}"
     " Not formatted correctly expecting only one of 'inputs' or 'instances'"
     " keys to exist "),
    ({"instances": []}, "JSON Value: {\n    \"instances\": []\n} No values in "
     "'instances' array"),
    ({"instances": {"images": [1]}}, "JSON Value: {\n    \"instances\": {\n"
     "        \"images\": [\n            1\n        ]\n    }\n} Excepting "
     "'instances' to be an list/array"),
    ({"signature_name": 2, "instances": [1]}, "JSON Value: {\n    "
     "\"signature_name\": 2,\n    \"instances\": [\n        1\n    ]\n} not "
     "formatted correctly. 'signature_name' key must be a string value."),
    ([1, 2], "JSON Value: [\n    1,\n    2\n] Is not object"),
    ({"instances": [[1, 2], [3]]}, "Failed to process element: 1 of "
     "'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but "
     "got: 1"),
    ({"instances": [[[1, 2]], [[3], [4]]]}, "Failed to process element: 1 of "
     "'instances' list. Error: INVALID_ARGUMENT: Expecting shape [1,2] but "
     "got: [2,1]"),
    ({"inputs": [[1, 2], [3]]}, "Encountered list at unexpected size: 1 at "
     "level: 1 expected size: 2"),
    ({"inputs": [[1, 2], 3]}, "JSON Value: 3 found at incorrect level: 2 in "
     "the JSON DOM. Expected at level: 2"),
    ({"inputs": [1, [2]]}, "Encountered list at unexpected level: 1 expected < 1"),
    ({"instances": [[1], {"images": [2]}]},
     "Expecting value/list but got object at item 1 of input list"),
    ({"instances": [{"images": [1]}, [2]]},
     "Expecting object but got list at item 1 of input list"),
    ({"instances": [{"pixels": [1]}]}, "Failed to process element: 0 key: "
     "pixels of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does "
     "not have named input: pixels"),
    ({"inputs": [["0.5"]]},
     'JSON Value: "0.5" Type: String is not of expected type: float'),
    ({"inputs": [[True]]}, "JSON Value: true Type: True is not of expected "
     "type: float"),
    ({"inputs": [[None]]}, "JSON Value: null Type: Null is not of expected "
     "type: float"),
    ({"inputs": [[16777217]]}, "Cannot convert JSON value: 16777217 to float "
     "without loss of precision."),
    ({"inputs": [[1e39]]}, "Cannot convert JSON value: 1e+39 to float without "
     "loss of precision."),
])
def test_a_request_the_server_rejects_gets_its_message(request_body, message):
  assert rejection(request_body) == message


@pytest.mark.parametrize("body, message", [
    (b"", "JSON Parse error: The document is empty"),
    (b" \n", "JSON Parse error: The document is empty. at offset: 2"),
    (b'{"instances": [1, 2', "JSON Parse error: Missing a comma or ']' after "
     "an array element. at offset: 19"),
    (b'{"instances": [1] "inputs": 2}', "JSON Parse error: Missing a comma or "
     "'}' after an object member. at offset: 18"),
    (b'{"instances": [[0.1, x]]}', "JSON Parse error: Invalid value. at offset: 21"),
    (b"{instances: [1]}", "JSON Parse error: Missing a name for object member. "
     "at offset: 1"),
    (b'{"instances" [1]}', "JSON Parse error: Missing a colon after a name of "
     "object member. at offset: 13"),
    (b'{"a": "[}]"} x', "JSON Parse error: The document root must not be "
     "followed by other values. at offset: 13"),
    (b'{"signature_name": "x', "JSON Parse error: Missing a closing quotation "
     "mark in string. at offset: 21"),
])
def test_bad_json_gets_rapidjsons_parse_error(body, message):
  assert rejection(body) == message


def test_nan_and_infinity_are_numbers_as_the_server_reads_them():
  _, _, tensors = parse({"inputs": [[float("nan"), float("inf"), -1e-3]]})
  assert np.isnan(tensors["images"][0, 0]) and np.isinf(tensors["images"][0, 1])


# ---------------------------------------------------------------- answers

OUTPUTS = {"probabilities": np.array([[0.25, 0.0795036], [1e-7, 3.0]], np.float32),
           "classes": np.array([7, 2], np.int64)}


def test_row_answers_are_one_object_per_example_keyed_by_output():
  text = json_tensor.predict_response(OUTPUTS, ROW)
  assert text == """{
    "predictions": [
        {
            "classes": 7,
            "probabilities": [0.25, 0.0795036]
        },
        {
            "classes": 2,
            "probabilities": [1e-07, 3.0]
        }
    ]
}"""
  [first, _] = json.loads(text)["predictions"]
  assert type(first["classes"]) is int and type(first["probabilities"][0]) is float


def test_one_output_is_written_without_its_name():
  text = json_tensor.predict_response({"classes": OUTPUTS["classes"]}, ROW)
  # The layout the server's PrettyWriter gives: items on one line, then "]".
  assert text == '{\n    "predictions": [7, 2\n    ]\n}'
  assert json_tensor.predict_response({"classes": OUTPUTS["classes"]},
                                      COLUMNAR) == (
      '{\n    "outputs": [\n        7,\n        2\n    ]\n}')


def test_columnar_answers_are_an_object_of_tensors():
  answer = json.loads(json_tensor.predict_response(OUTPUTS, COLUMNAR))
  assert list(answer) == ["outputs"]
  assert answer["outputs"] == {"classes": [7, 2],
                               "probabilities": [[0.25, 0.0795036], [1e-7, 3.0]]}


@pytest.mark.parametrize("value, text", [
    (0.25, "0.25"), (1.0, "1.0"), (100.0, "100.0"), (1e-7, "1e-07"),
    (0.1, "0.1"), (1 / 3, "0.333333343"), (123456789.0, "123456792.0"),
    (3.4028235e38, "3.40282347e+38"), (float("nan"), "NaN"),
    (float("-inf"), "-Infinity")])
def test_float32_is_written_in_the_fewest_digits_that_give_it_back(value, text):
  answer = json_tensor.predict_response({"x": np.array([value], np.float32)},
                                        COLUMNAR)
  assert answer == '{\n    "outputs": [\n        ' + text + '\n    ]\n}'
  if np.isfinite(value):
    assert np.float32(text) == np.float32(value)


def test_row_answers_need_one_batch_size():
  with pytest.raises(RequestError, match="Tensor name: b has inconsistent "
                     "batch size: 3 expecting: 2"):
    json_tensor.predict_response({"a": np.zeros(2), "b": np.zeros(3)}, ROW)
  with pytest.raises(RequestError, match="Tensor name: a has no shape information"):
    json_tensor.predict_response({"a": np.float32(1)}, ROW)


def test_the_error_body_is_the_servers():
  body = json_tensor.error_body('Serving signature name: "x" not found')
  assert body == '{\n    "error": "Serving signature name: \\"x\\" not found"\n}'
  assert json.loads(body) == {"error": 'Serving signature name: "x" not found'}


def test_request_values_are_quoted_as_rapidjson_writes_them():
  assert json_tensor.value_text([1e-7, 1e22, 0.001, 12.5, -0.0, "é"]) == (
      '[\n    1e-7,\n    1e22,\n    0.001,\n    12.5,\n    -0.0,\n    "é"\n]')
  assert json_tensor.value_text(0.1) == "0.1"  # alone: as a float32
