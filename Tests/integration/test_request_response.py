"""Every field of `req` and every method of `res`, as LUA-API.md names them."""


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


def test_response_misuse_raises_clear_errors(moonwire):
    server = moonwire("""
        function OnCommandGet(req, res)
          local ok, err = pcall(function()
            if req.path == "/badstatus" then res.status = 99
            elseif req.path == "/badheader" then res:header("Bad Name", "x")
            elseif req.path == "/splitting" then res:header("X", "a\\r\\nInjected: yes")
            elseif req.path == "/badjson" then res:json({f = print}) end
          end)
          res:send(tostring(err))
        end
    """)
    assert "100 to 999" in server.get("/badstatus").text
    assert "header name" in server.get("/badheader").text
    reply = server.get("/splitting")
    assert "invalid value" in reply.text and "injected" not in reply.headers
    assert "cannot encode" in server.get("/badjson").text


def test_req_cannot_be_used_after_its_handler(moonwire):
    server = moonwire("""
        function OnCommandGet(req, res)
          if req.path == "/keep" then kept = req; res:send("kept") return end
          local ok, err = pcall(function() return kept:header("host") end)
          res:send(tostring(ok) .. " " .. tostring(err))
        end
    """, threads=1)
    server.get("/keep")
    reply = server.get("/use")
    assert reply.text.startswith("false") and "finished" in reply.text


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
