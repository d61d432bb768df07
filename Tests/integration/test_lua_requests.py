"""Every field of `req` and every method of `res` (docs/lua-api.md), seen by a real client.
apps/echo answers with a JSON description of the request; some tests bring their own script."""
import email.utils
import json

import pytest

from harness import parse_one, parse_responses, read_until_close


@pytest.fixture(scope="module")
def server(moonwire_module):
    return moonwire_module(app="echo")


def raw_json(server, request_bytes):
    reply = server.raw(request_bytes)
    response = parse_one(reply.data)
    assert response.status == 200, reply.data[:300]
    return json.loads(response.body)


# --- req ------------------------------------------------------------------------------------

def test_method_path_uri_query(server):
    target = "/echo/a%20b/%C3%A9/x+y?a=1&a=2&a=3&flag&sp=hello+world&enc=%C3%A9%26%3D&one=1"
    data = raw_json(server, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert data["method"] == "GET"
    assert data["path"] == "/echo/a b/é/x+y"     # percent-decoded, no query, '+' kept in paths
    assert data["uri"] == target                  # the raw target
    assert data["query"] == {"a": ["1", "2", "3"], "flag": True, "sp": "hello world",
                             "enc": "é&=", "one": "1"}


def test_query_is_empty_table_without_query(server):
    data = server.get("/echo/none").json()
    assert data["query"] in ({}, [])   # an empty Lua table (encodes as {})
    assert data["uri"] == "/echo/none" and data["path"] == "/echo/none"


def test_headers_are_lowercase_and_lookup_is_case_insensitive(server):
    data = server.get("/echo/h", headers={"X-Mixed-Case": "MiXeD value", "X-Other": "o"}).json()
    assert data["headers"]["x-mixed-case"] == "MiXeD value"
    assert data["headers"]["x-other"] == "o"
    assert all(name == name.lower() for name in data["headers"]), list(data["headers"])
    assert data["header_mixed"] == "MiXeD value" and data["header_upper"] == "MiXeD value"
    assert data["header_missing_is_nil"] is True


def test_repeated_headers_are_joined(server):
    data = raw_json(server, b"GET /echo/r HTTP/1.1\r\nHost: x\r\nX-Multi: a\r\nX-Multi: b\r\n"
                            b"x-multi: c\r\nConnection: close\r\n\r\n")
    assert data["headers"]["x-multi"] == "a, b, c"
    assert data["header_multi"] == "a, b, c"


def test_body_is_empty_string_without_body(server):
    data = server.get("/echo/nobody").json()
    assert data["body"] == "" and data["body_type"] == "string" and data["body_length"] == 0


def test_body_with_content_length(server):
    payload = "line one\r\nline two é \x00 end"
    data = server.request("POST", "/echo/body", content=payload.encode()).json()
    assert data["method"] == "POST"
    assert data["body"] == payload and data["body_length"] == len(payload.encode())


def test_body_for_other_methods(server):
    for method in ["PUT", "PATCH", "DELETE"]:
        data = server.request(method, "/echo/other", content=b"payload-" + method.encode()).json()
        assert data["method"] == method and data["body"] == f"payload-{method}"


def test_remote_address_version_scheme(server):
    with server.connect() as s:
        client_port = s.getsockname()[1]
        s.sendall(b"GET /echo/peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = json.loads(parse_one(read_until_close(s).data).body)
    assert data["remote_ip"] == "127.0.0.1"
    assert data["remote_port"] == client_port and data["remote_port_type"] == "integer"
    assert data["version"] == "1.1" and data["scheme"] == "http"


def test_version_of_http10(server):
    data = raw_json(server, b"GET /echo/old HTTP/1.0\r\nHost: x\r\n\r\n")
    assert data["version"] == "1.0"


@pytest.mark.parametrize("host, expected", [
    ("example.com:8080", "example.com"),
    ("example.org", "example.org"),
    ("127.0.0.1:1234", "127.0.0.1"),
])
def test_host_without_port(server, host, expected):
    data = raw_json(server, f"GET /echo/host HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    assert data["host"] == expected


def test_cookies(server):
    data = server.get("/echo/c", headers={"Cookie": "a=1; session=abc123; empty="}).json()
    assert data["cookies"]["a"] == "1" and data["cookies"]["session"] == "abc123"
    assert data["cookies"].get("empty", "") == ""
    assert server.get("/echo/nocookie").json()["cookies"] in ({}, [])


def test_scripts_may_add_fields_to_req(server):
    assert server.get("/echo/custom").json()["custom_field"] == "mine"


def test_absolute_form_and_asterisk_targets(server):
    data = raw_json(server, b"GET http://example.com/abs/p%20q?x=1 HTTP/1.1\r\nHost: example.com\r\n"
                            b"Connection: close\r\n\r\n")
    assert data["path"] == "/abs/p q" and data["query"] == {"x": "1"}
    reply = server.raw(b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = parse_one(reply.data)
    assert response.status == 200 and json.loads(response.body)["method"] == "OPTIONS"


def echo_app():
    return """
        function OnHTTPRequest(req, res)
          res:json({
            method = req.method, path = req.path, uri = req.uri, query = req.query,
            headers = req.headers, header = req:header("X-CASE-Test"), missing = req:header("nope"),
            body = req.body, remote_ip = req.remote_ip, remote_port = req.remote_port,
            version = req.version, scheme = req.scheme, host = req.host, cookies = req.cookies,
          })
        end
    """


def test_request_fields(moonwire):
    server = moonwire(echo_app())
    reply = server.request(
        "POST", "/a%20b/c?x=1&x=2&y=%C3%A9+z&flag",
        content=b"payload", headers={"X-Case-Test": "v", "Cookie": "a=1; b=two", "Host": "example.com:8080"})
    data = reply.json()
    assert data["method"] == "POST"
    assert data["path"] == "/a b/c"
    assert data["uri"] == "/a%20b/c?x=1&x=2&y=%C3%A9+z&flag"
    assert data["query"] == {"x": ["1", "2"], "y": "é z", "flag": True}
    assert data["headers"]["x-case-test"] == "v"
    assert data["header"] == "v"
    assert "missing" not in data
    assert data["body"] == "payload"
    assert data["remote_ip"] == "127.0.0.1" and isinstance(data["remote_port"], int)
    assert data["version"] == "1.1" and data["scheme"] == "http"
    assert data["host"] == "example.com"
    assert data["cookies"] == {"a": "1", "b": "two"}


# --- res ------------------------------------------------------------------------------------

def assert_common_headers(response_headers, body):
    assert response_headers["server"] == "moonwire"
    assert email.utils.parsedate_to_datetime(response_headers["date"]) is not None
    assert response_headers["content-length"] == str(len(body))
    assert "transfer-encoding" not in response_headers


def test_send_defaults(server):
    reply = server.get("/res/default")
    assert reply.status_code == 200 and reply.text == "plain text"
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert_common_headers(reply.headers, reply.content)


def test_send_appends(server):
    reply = server.get("/res/append")
    assert reply.text == "abcd"
    assert_common_headers(reply.headers, reply.content)


def test_status_default_and_assignment(server):
    reply = server.get("/res/status")
    assert reply.status_code == 201
    assert reply.text == "200 201 integer"


def test_status_only_gives_empty_body(server):
    reply = server.raw(b"GET /res/status-only HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = parse_one(reply.data)
    assert response.status == 404 and response.body == b""
    assert response.header("content-length") == "0"
    assert response.header("server") == "moonwire" and response.header("date")


def test_header_replaces(server):
    reply = server.raw(b"GET /res/header-replace HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = parse_one(reply.data)
    assert response.all("x-replaced") == ["second"]


def test_header_list_gives_repeated_headers(server):
    reply = server.raw(b"GET /res/header-list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = parse_one(reply.data)
    assert response.all("set-cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    assert response.all("x-multi") == ["one", "two", "three"]


def test_header_nil_removes(server):
    reply = server.get("/res/header-remove")
    assert "x-gone" not in reply.headers and reply.headers["x-kept"] == "kept"


def test_header_overrides_content_type(server):
    reply = server.get("/res/content-type")
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert reply.text == "<p>html</p>"


def test_json_response(server):
    reply = server.get("/res/json")
    assert reply.status_code == 200
    assert reply.headers["content-type"].split(";")[0] == "application/json"
    assert reply.json() == {"name": "moonwire", "list": [1, 2, 3],
                            "nested": {"ok": True, "n": 1.5}, "text": "é"}
    assert_common_headers(reply.headers, reply.content)
    assert server.get("/res/json-array").json() == ["x", "y"]


@pytest.mark.parametrize("path, status, location", [
    ("/res/redirect", 302, "/elsewhere?x=1"),
    ("/res/redirect-301", 301, "https://example.com/moved"),
    ("/res/redirect-307", 307, "/temp"),
])
def test_redirect(server, path, status, location):
    reply = server.get(path)   # httpx does not follow redirects by default
    assert reply.status_code == status and reply.headers["location"] == location
    assert_common_headers(reply.headers, reply.content)


def test_binary_and_large_bodies(server):
    reply = server.get("/res/binary")
    assert reply.content == bytes(range(256))
    reply = server.get("/res/large")
    assert reply.content == b"0123456789" * 10000
    assert reply.headers["content-length"] == "100000"


@pytest.mark.parametrize("path", ["/res/json", "/res/default", "/res/redirect", "/echo/head"])
def test_head_has_the_headers_of_get_and_no_body(server, path):
    head_bytes = f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    get_bytes = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    # HEAD then GET on one connection: if HEAD leaked a body, the GET's answer would be garbled
    reply = server.raw(head_bytes + get_bytes)
    head, get = [r for r in parse_responses(reply.data, head=(0,)) if r.status >= 200]
    assert head.status == get.status
    assert head.body == b""
    if path != "/res/redirect":
        assert get.body != b""
    ignore = {"date", "connection"}
    if path == "/echo/head":
        ignore.add("content-length")   # the echoed method differs in length
    assert {k: v for k, v in head.headers.items() if k not in ignore} == \
           {k: v for k, v in get.headers.items() if k not in ignore}


def test_response_methods(moonwire):
    server = moonwire("""
        function OnCommandGet(req, res)
          local p = req.path
          if p == "/send" then res:send("a"); res:send("b")
          elseif p == "/json" then res:json({list = {1, 2}, name = "x", nested = {ok = true}})
          elseif p == "/redirect" then res:redirect("/elsewhere")
          elseif p == "/redirect301" then res:redirect("/moved", 301)
          elseif p == "/status" then res.status = 404
          elseif p == "/teapot" then res.status = 418; res:send("short and stout")
          elseif p == "/headers" then
            res:header("X-One", "1"); res:header("X-One", "2")
            res:header("Set-Cookie", {"a=1", "b=2"})
            res:header("X-Gone", "x"); res:header("X-Gone", nil)
            res:header("Content-Type", "text/html"); res:send("<b>hi</b>")
          elseif p == "/readback" then res.status = 201; res:send(tostring(res.status))
          end
        end
    """)
    assert server.get("/send").text == "ab"
    assert server.get("/send").headers["content-type"] == "text/plain; charset=utf-8"
    reply = server.get("/json")
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"list": [1, 2], "name": "x", "nested": {"ok": True}}
    reply = server.get("/redirect")
    assert reply.status_code == 302 and reply.headers["location"] == "/elsewhere"
    assert server.get("/redirect301").status_code == 301
    reply = server.get("/status")
    assert reply.status_code == 404 and reply.content == b"" and reply.headers["content-length"] == "0"
    reply = server.get("/teapot")
    assert reply.status_code == 418 and reply.text == "short and stout"
    reply = server.get("/headers")
    assert reply.headers["x-one"] == "2"
    assert reply.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert "x-gone" not in reply.headers
    assert reply.headers["content-type"] == "text/html"
    assert server.get("/readback").text == "201"
    for header in ("date", "server", "content-length"):
        assert header in reply.headers


def test_pipelined_bodies_stay_apart(moonwire):
    # Pooled calls keep a small body's storage for the next response. Pipelined answers are
    # still waiting to be flushed when the next request writes its body: each must keep its own.
    server = moonwire('''
moonwire.get("/b/(\\\\d+)", function(req, res)
  local n = tonumber(req.params[1])
  res:send(string.rep(string.char(97 + n % 26), n))
end)
''', threads=1)
    sizes = [5, 7, 3, 20000, 9, 16384, 1, 12000, 4, 30000, 2] * 3
    requests = b"".join(f"GET /b/{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for n in sizes[:-1])
    requests += f"GET /b/{sizes[-1]} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    reply = server.raw(requests).data
    bodies = []
    while reply:
        head, _, rest = reply.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        bodies.append(rest[:length])
        reply = rest[length:]
    assert bodies == [bytes([97 + n % 26]) * n for n in sizes]
