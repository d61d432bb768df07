"""Issue 2 — moonwire.json: encode/decode round trips through real request bodies, and the
rules of the spec checked inside Lua (arrays vs objects, null, ints vs floats, errors)."""
import json

import pytest


@pytest.fixture(scope="module")
def server(moonwire_module):
    return moonwire_module(app="json")


@pytest.fixture(scope="module")
def checks(server):
    reply = server.get("/checks")
    assert reply.status_code == 200, reply.text
    return reply.json()


def roundtrip(server, text):
    reply = server.request("POST", "/roundtrip", content=text.encode("utf-8"))
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    return json.loads(reply.content)


DOCUMENTS = {
    "nested": {"a": {"b": {"c": {"d": [1, [2, [3, {"e": "deep"}]]]}}}, "z": {"y": [0]}},
    "array of objects": [{"id": 1, "tags": ["x", "y"]}, {"id": 2, "tags": ["z"]}],
    "unicode": {"fr": "déjà vu", "emoji": "😀🌙", "cjk": "中文", "key é": "value ü"},
    "escapes": {"s": "quote\" backslash\\ slash/ nl\n tab\t cr\r nul\u0000 ctrl\u0001\u001f"},
    "null": {"nothing": None, "list": [None, 1, None], "nested": {"n": None}},
    "numbers": {"int": 42, "neg": -7, "zero": 0, "float": 2.5, "negf": -0.001,
                "exp": 1.5e10, "small": 1e-7, "big": 9007199254740993},
    "booleans": {"t": True, "f": False, "list": [True, False]},
    "top level array": [1, "two", 3.5, None, True, {"six": 6}],
    "top level string": "just a string",
    "top level number": 12345,
    "empty object inside": {"o": {"x": 1}},
}


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_roundtrip(server, name):
    original = DOCUMENTS[name]
    assert roundtrip(server, json.dumps(original)) == original


def test_empty_array_comes_back_as_empty_object(server):
    # the spec: an empty table encodes as {}; a decoded [] is an empty table
    assert roundtrip(server, '{"list": [], "obj": {}}') == {"list": {}, "obj": {}}


def test_roundtrip_ascii_escaped_unicode(server):
    # \u escapes (with a surrogate pair) in, the same characters out
    text = json.dumps({"s": "é😀中"}, ensure_ascii=True)
    assert "\\ud83d\\ude00" in text
    assert roundtrip(server, text) == {"s": "é😀中"}


def test_roundtrip_keeps_integers_integers(server):
    reply = server.request("POST", "/roundtrip", content=b'{"i":3,"f":2.5,"n":-17}')
    text = reply.text
    parsed = json.loads(text)
    assert parsed == {"i": 3, "f": 2.5, "n": -17}
    assert type(parsed["i"]) is int and type(parsed["n"]) is int, text   # not 3.0
    assert type(parsed["f"]) is float


def test_decode_error_returns_nil_and_message(server):
    reply = server.request("POST", "/decode-error", content=b'{"unterminated": ')
    data = reply.json()
    assert data["value_is_nil"] is True and data["err_type"] == "string" and data["err"]


def test_numbers(checks):
    assert checks["encode_int"] == "3"
    assert checks["encode_negative_int"] == "-17"
    assert checks["encode_zero"] == "0"
    assert json.loads(checks["encode_float"]) == 2.5 and "." in checks["encode_float"]
    assert json.loads(checks["encode_negative_float"]) == -0.125
    assert checks["encode_max_int"] == str(2**63 - 1)
    assert checks["decode_int_type"] == "integer"
    assert checks["decode_negative_int_type"] == "integer"
    assert checks["decode_float_type"] == "float"
    assert checks["decode_exponent_value"] is True
    assert checks["decode_big_int_exact"] is True and checks["decode_big_int_type"] == "integer"


def test_tables_arrays_and_objects(checks):
    assert checks["encode_empty_table"] == "{}"
    assert json.loads(checks["encode_array"]) == [1, 2, 3]
    assert checks["encode_array"].startswith("[")
    assert json.loads(checks["encode_string_array"]) == ["a", "b"]
    assert json.loads(checks["encode_object"]) == {"a": 1}
    # keys 1..n plus others: an object (integer keys become strings)
    assert json.loads(checks["encode_mixed"]) == {"1": 1, "2": 2, "x": 3}
    assert json.loads(checks["encode_sparse"]) == {"1": "a", "3": "c"}   # not keys 1..n
    assert json.loads(checks["encode_nested"]) == {"outer": {"inner": [1, {"deep": True}]}}
    assert checks["decode_array_length"] == 4 and checks["decode_array_first"] == 10
    assert checks["decode_nested"] == "deep"
    assert checks["decode_empty_object_is_table"] is True


def test_null(checks):
    assert checks["encode_null"] == "null"
    assert json.loads(checks["encode_null_in_array"]) == [1, None, 3]
    assert json.loads(checks["encode_null_in_object"]) == {"a": None}
    assert checks["decode_null_is_sentinel"] is True
    assert checks["decode_null_in_object_is_sentinel"] is True
    assert checks["decode_null_in_array_is_sentinel"] is True
    assert checks["decode_null_in_array_keeps_length"] is True


def test_booleans_strings_and_escapes(checks):
    assert checks["encode_true"] == "true" and checks["encode_false"] == "false"
    assert checks["decode_true"] is True and checks["decode_false"] is True
    assert json.loads(checks["encode_string"]) == \
        'quote" backslash\\ slash/ newline\n tab\t cr\r ctrl\x01 bell\x07'
    # control characters must be escaped in the JSON text
    assert not any(ord(c) < 0x20 for c in checks["encode_string"])
    assert json.loads(checks["encode_unicode"]) == "é😀中"
    assert checks["decode_unicode_escapes"] is True
    assert checks["decode_escapes"] is True
    assert checks["decode_raw_utf8"] is True
    assert checks["decode_whitespace"] is True
    assert checks["decode_string_top_level"] is True


@pytest.mark.parametrize("case", [
    "unterminated_object", "empty", "unterminated_array", "bad_literal", "trailing_garbage",
    "trailing_comma", "single_quotes", "unterminated_string",
])
def test_decode_errors_return_nil_err(checks, case):
    result = checks["decode_errors"][case]
    assert result["value_is_nil"] is True, (case, result)
    assert result["err_type"] == "string" and result["err"], (case, result)


@pytest.mark.parametrize("case", ["function", "cycle"])
def test_encode_errors_raise(checks, case):
    result = checks["encode_errors"][case]
    assert result["raised"] is True, (case, result)
    assert result["err"], (case, result)
