"""The moonwire module beside the events: moonwire.json (round trips through real request
bodies, and its rules checked inside Lua: arrays and objects, null, integers and floats,
errors), moonwire.log, moonwire.sleep (it waits without blocking the event loop) and moonwire.re."""
import concurrent.futures
import json
import re
import time

import httpx
import pytest


# --- moonwire.json --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def json_server(moonwire_module):
    return moonwire_module(app="json")


@pytest.fixture(scope="module")
def checks(json_server):
    reply = json_server.get("/checks")
    assert reply.status_code == 200, reply.text
    return reply.json()


def roundtrip(json_server, text):
    reply = json_server.request("POST", "/roundtrip", content=text.encode("utf-8"))
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
def test_roundtrip(json_server, name):
    original = DOCUMENTS[name]
    assert roundtrip(json_server, json.dumps(original)) == original


def test_empty_array_comes_back_as_empty_object(json_server):
    # docs/lua-api.md: an empty table encodes as {}; a decoded [] is an empty table
    assert roundtrip(json_server, '{"list": [], "obj": {}}') == {"list": {}, "obj": {}}


def test_roundtrip_ascii_escaped_unicode(json_server):
    # \u escapes (with a surrogate pair) in, the same characters out
    text = json.dumps({"s": "é😀中"}, ensure_ascii=True)
    assert "\\ud83d\\ude00" in text
    assert roundtrip(json_server, text) == {"s": "é😀中"}


def test_roundtrip_keeps_integers_integers(json_server):
    reply = json_server.request("POST", "/roundtrip", content=b'{"i":3,"f":2.5,"n":-17}')
    text = reply.text
    parsed = json.loads(text)
    assert parsed == {"i": 3, "f": 2.5, "n": -17}
    assert type(parsed["i"]) is int and type(parsed["n"]) is int, text   # not 3.0
    assert type(parsed["f"]) is float


def test_decode_error_returns_nil_and_message(json_server):
    reply = json_server.request("POST", "/decode-error", content=b'{"unterminated": ')
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


def test_json_module(moonwire):
    server = moonwire(r"""
        function OnCommandGet(req, res)
          local json = moonwire.json
          local v = json.decode('{"a":[1,2.5,"\\u00e9",null,true],"b":{}}')
          local bad, err = json.decode("{oops")
          res:send(json.encode({
            first = v.a[1], second = v.a[2], third = v.a[3], null_is_sentinel = v.a[4] == json.null,
            t = v.a[5], bad = bad == nil, err = err,
            text = json.encode("line\nbreak \"q\""),
          }))
        end
    """)
    data = server.get("/").json()
    assert data["first"] == 1 and data["second"] == 2.5 and data["third"] == "é"
    assert data["null_is_sentinel"] is True and data["t"] is True and data["bad"] is True
    assert "json" in data["err"]
    assert data["text"] == '"line\\nbreak \\"q\\""'


# --- moonwire.log ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def echo_server(moonwire_module):
    return moonwire_module(app="echo")


def test_log_functions_write_stderr_lines(echo_server):
    mark = echo_server.log_mark()
    assert echo_server.get("/log").text == "logged"
    assert echo_server.wait_for_log("LOG-TOKEN-ERROR", since=mark)
    lines = echo_server.log_since(mark).splitlines()

    def line_with(token):
        found = [line for line in lines if token in line]
        assert len(found) == 1, (token, lines)
        return found[0]

    assert "LOG-TOKEN-INFO" in line_with("LOG-TOKEN-INFO") and "42" in line_with("LOG-TOKEN-INFO")
    assert re.match(r"^\S+\s+info\s", line_with("LOG-TOKEN-INFO"))
    assert re.match(r"^\S+\s+warn(ing)?\s", line_with("LOG-TOKEN-WARN"))
    assert re.match(r"^\S+\s+error\s", line_with("LOG-TOKEN-ERROR"))


def test_log_module_writes_lines(moonwire):
    server = moonwire("""
        function OnCommandGet(req, res)
          moonwire.log.info("info line", 42)
          moonwire.log.warn("warn line")
          moonwire.log.error("error line", {})
          res:send("ok")
        end
    """)
    server.get("/")
    log = server.log()
    assert "info line 42" in log and "warn line" in log and "error line table:" in log
    assert "main.lua:3" in log


# --- moonwire.sleep -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sleep_server(moonwire_module):
    return moonwire_module(app="protocol", threads=2)


def test_sleep_waits(sleep_server):
    started = time.monotonic()
    reply = sleep_server.get("/sleep?s=0.5")
    elapsed = time.monotonic() - started
    assert reply.status_code == 200 and reply.text == "GET /sleep 0:"
    assert 0.45 <= elapsed < 3, elapsed


def test_twenty_parallel_sleeps_finish_together(sleep_server):
    def fetch(i):
        with httpx.Client(timeout=10, headers={"Accept-Encoding": "identity"}) as client:
            reply = client.get(f"{sleep_server.url}/sleep?s=1&i={i}")
            return reply.status_code, reply.text

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(fetch, range(20)))
    elapsed = time.monotonic() - started
    assert results == [(200, "GET /sleep 0:")] * 20
    # Sleeps that blocked their event loop would take about 10 s (20 on two loops); the bound
    # leaves room for 20 clients starting at once on a loaded machine.
    assert elapsed < 5, f"20 parallel moonwire.sleep(1) requests took {elapsed:.2f} s"


def test_sleeping_request_does_not_block_others(sleep_server):
    # Sleeps of 3 s: quick requests that waited for them would take about 3 s; five that did not
    # take well under 2.5 s even on a loaded machine (each starts a new httpx client).
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        sleepers = [pool.submit(sleep_server.get, "/sleep?s=3") for _ in range(4)]
        time.sleep(0.1)
        started = time.monotonic()
        for i in range(5):
            assert sleep_server.get(f"/quick{i}").text == f"GET /quick{i} 0:"
        quick = time.monotonic() - started
        assert all(f.result().status_code == 200 for f in sleepers)
    assert quick < 2.5, f"quick requests waited for sleeping ones ({quick:.2f} s)"


def test_sleep_at_the_top_level_raises_and_waits_in_events(moonwire):
    server = moonwire(app="sleep_outside")
    data = server.get("/top").json()
    assert data["top_level_ok"] is False
    assert data["top_level_err_type"] == "string" and data["top_level_err"]
    records = server.wait_for_records("tcp_sleep.log", 1)
    assert records and all(line == "true | nil" for line in records), records
    inside = server.get("/inside").json()
    assert inside["ok"] is True, inside


# --- moonwire.re ----------------------------------------------------------------------------

def test_regex_module(moonwire):
    server = moonwire(r"""
        function OnCommandGet(req, res)
          local m = moonwire.re.match(req.query.s or "", [[(?<user>\w+)@(?<domain>[\w.]+)]])
          res:json({user = m and m.user, domain = m and m.domain,
                    masked = (moonwire.re.gsub(req.query.s or "", [[\w+@]], "***@"))})
        end
    """)
    assert server.get("/", params={"s": "mail bob@example.org now"}).json() == {
        "user": "bob", "domain": "example.org", "masked": "mail ***@example.org now"}


def test_functions_that_find_nothing_return_exactly_one_nil(moonwire):
    server = moonwire("""
        function OnCommandGet(req, res)
          res:send(string.format("%d %s %d %s", select("#", req:header("x-missing")), tostring(req:header("x-missing")),
                   select("#", moonwire.shared:get("absent")), tostring(moonwire.shared:get("absent"))))
        end
    """)
    reply = server.get("/")
    assert reply.status_code == 200 and reply.text == "1 nil 1 nil"
